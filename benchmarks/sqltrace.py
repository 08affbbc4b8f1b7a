"""Run the runner's CLI with every SQLite statement it executes recorded, to count database work.

    python benchmarks/sqltrace.py TRACE.json --config CFG run

Run as a script (not ``-m``) so ``bot_runner`` is imported from wherever it is installed. Every
connection the process opens gets a trace callback; each statement is recorded with
``time.monotonic()`` (the same clock as the benchmark process on Linux) and the connection's
``total_changes`` when the statement started, so the rows a statement changed are the difference
to the next statement's value. The record is written as JSON when the process exits. The
callback costs CPU, so this variant is only used for counting, never for timings.
"""

from __future__ import annotations

import atexit
import json
import sqlite3
import sys
import time
from typing import Any

Event = tuple[float, int, int, str]
_events: list[Event] = []
_connections: list[sqlite3.Connection] = []
_real_connect = sqlite3.connect


def _connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    conn: sqlite3.Connection = _real_connect(*args, **kwargs)
    number = len(_connections)
    _connections.append(conn)

    def trace(sql: str) -> None:
        # Called on the connection's own thread, inside sqlite3_step: reading the counter is safe.
        _events.append((time.monotonic(), number, conn.total_changes, sql))

    conn.set_trace_callback(trace)
    return conn


def _dump(path: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"events": _events}, out)


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit("usage: sqltrace.py TRACE.json RUNNER-ARGS...")
    out, args = sys.argv[1], sys.argv[2:]
    sqlite3.connect = _connect  # type: ignore[assignment]  # aiosqlite looks it up at call time
    atexit.register(_dump, out)
    from bot_runner.cli import main as cli

    sys.argv = ["colorchanger-runner", *args]
    cli()


if __name__ == "__main__":
    main()
