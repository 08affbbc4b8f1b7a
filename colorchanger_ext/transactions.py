"""One explicit SQLite transaction on an aiosqlite connection that a cancellation cannot split.

aiosqlite runs every request it has queued, even when the task awaiting it was cancelled: a
``BEGIN`` cancelled while it waits for another process's lock still opens a transaction a moment
later, on a connection every bot of the process shares. If nothing rolls it back, every later
write of every user runs inside that orphaned transaction and is never committed. So the ``BEGIN``
sits inside the guarded block, and every way out but a commit queues a ``ROLLBACK`` behind it
(shielded, so a second cancellation cannot skip it; harmless when no transaction is open).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator

import aiosqlite

__all__ = ["atomic", "roll_back"]


@contextlib.asynccontextmanager
async def atomic(conn: aiosqlite.Connection, begin: str = "BEGIN IMMEDIATE") -> AsyncIterator[None]:
    """Run the body between ``begin`` and ``COMMIT``; on any exception or cancellation, roll back."""
    try:
        await conn.execute_fetchall(begin)
        yield
        await conn.execute_fetchall("COMMIT")
    except BaseException:
        await roll_back(conn)
        raise


async def roll_back(conn: aiosqlite.Connection) -> None:
    """Queue a ``ROLLBACK`` after whatever this task queued before; it runs even if we are cancelled.

    aiosqlite executes requests in order, so it lands after a cancelled ``BEGIN`` or ``COMMIT`` that
    is still waiting in the worker thread. "No transaction is active" (the ``BEGIN`` failed, or the
    ``COMMIT`` went through) is not an error here: the caller's own exception says what happened.
    """
    with contextlib.suppress(sqlite3.Error, ValueError):  # ValueError: the connection is closed
        await asyncio.shield(conn.execute_fetchall("ROLLBACK"))
