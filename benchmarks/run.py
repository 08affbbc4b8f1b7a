"""Run every benchmark and write the markdown tables: ``python -m benchmarks [--quick] [--output FILE]``.

Also runs as ``python benchmarks/run.py``. The full run takes about 13 minutes on 2 cores; ``--quick``
(1 and 5 users, a few messages, one run each) about half a minute and only checks that everything
works: its timings mean little.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import importlib.metadata
import json
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: find the benchmarks package, installed packages first
    sys.path.append(str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Bench, Spread, percentile
from benchmarks.scenarios import (
    FILL_GROUP,
    FillResult,
    RunResult,
    WorkResult,
    log,
    run_fill,
    run_users,
    run_work,
)


@dataclass(frozen=True)
class Plan:
    """How much of everything to do."""

    name: str
    runs: int
    idle_seconds: float
    overhead_users: tuple[int, ...]  # user counts with a message phase
    scale_only_users: tuple[int, ...]  # user counts measured idle only
    message_seconds: dict[int, float]
    bursts_per_run: int
    burst_size: int
    burst_observe: float
    work_users: int
    work_idle: float
    work_seconds: float
    floor_messages: dict[int, float]  # reference client: user count -> message seconds (0: idle only)
    floor_idle: float
    fill_users: int
    fill_messages: int


FULL = Plan(
    name="full",
    runs=3,
    idle_seconds=60.0,
    overhead_users=(1, 100),
    scale_only_users=(1000,),
    message_seconds={1: 20.0, 100: 20.0},
    bursts_per_run=2,
    burst_size=100,
    burst_observe=1.0,
    work_users=10,
    work_idle=5.0,
    work_seconds=10.0,
    floor_messages={100: 20.0, 1000: 0.0},
    floor_idle=20.0,
    fill_users=20,
    fill_messages=2100,
)
QUICK = Plan(
    name="quick",
    runs=1,
    idle_seconds=2.0,
    overhead_users=(1, 5),
    scale_only_users=(),
    message_seconds={1: 3.0, 5: 2.0},
    bursts_per_run=1,
    burst_size=20,
    burst_observe=0.3,
    work_users=2,
    work_idle=1.0,
    work_seconds=2.0,
    floor_messages={5: 2.0},
    floor_idle=1.0,
    fill_users=2,
    fill_messages=2100,
)

WRITE_BEHIND_MS = 100.0
"""A colour record committed sooner than this after its PUT counts as written on the message path."""

TARGETS = {
    "p50": 1.0,
    "p99": 2.0,
    "rss_1000": 150.0,
    "per_user": 0.1,
    "startup_1000": 30.0,
    "idle_percent": 1.0,
    "cpu_per_1000": 0.5,
}


# --- measurements that need no runner ---------------------------------------------------------------


def dedup_memory(size: int) -> float:
    """Bytes the component's duplicate filter holds once full (``seen_messages`` message ids)."""
    from colorchanger_ext.dedup import RecentIds

    gc.collect()
    tracemalloc.start()
    recent = RecentIds(size)
    for _ in range(size * 4):  # well past the bound: the steady state of a long-running bot
        recent.add(str(uuid.uuid4()))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(recent) == size
    return float(held)


def frame_encode_us() -> float:
    """What the fake spends encoding one chat notification to JSON (counted in the overhead)."""
    from colorchanger_ext.testing import FakeUser
    from colorchanger_ext.testing.payloads import chat_message_event, frame

    user = FakeUser("1", "someone", "Someone", False, frozenset())
    event = chat_message_event(broadcaster=user, chatter=user, text="hello", message_id="x", color="")
    message = frame("notification", {"subscription": {}, "event": event})
    rounds = 2000
    start = time.perf_counter()
    for _ in range(rounds):
        json.dumps(message)
    return (time.perf_counter() - start) / rounds * 1e6


def machine() -> dict[str, str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    try:
        checkout = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent.parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        checkout = "not a git checkout"
    return {
        "checkout": checkout,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": model or platform.processor() or "?",
        "memory": memory or "?",
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "twitchio": version("twitchio"),
        "aiohttp": version("aiohttp"),
        "aiosqlite": version("aiosqlite"),
        "sqlite": sqlite3.sqlite_version,
        "twitchio-colorchanger": version("twitchio-colorchanger"),
    }


# --- running ----------------------------------------------------------------------------------------


@dataclass
class Results:
    plan: Plan
    command: str
    machine: dict[str, str]
    runs: dict[int, list[RunResult]]
    floor: dict[int, RunResult]
    work: WorkResult | None
    fill: FillResult | None
    dedup_bytes: float
    dedup_size: int
    encode_us: float
    elapsed_s: float


async def measure(plan: Plan, workdir: Path) -> dict[str, Any]:
    runs: dict[int, list[RunResult]] = {}
    for count in (*plan.overhead_users, *plan.scale_only_users):
        bench = Bench(workdir / f"users-{count}", count)
        log(f"setting up {count} user(s)")
        await bench.open()
        try:
            for number in range(plan.runs):
                log(f"{count} user(s), run {number + 1} of {plan.runs}")
                runs.setdefault(count, []).append(
                    await run_users(
                        bench,
                        idle_seconds=plan.idle_seconds,
                        message_seconds=plan.message_seconds.get(count, 0.0),
                        bursts=plan.bursts_per_run if count == 1 else 0,
                        burst_size=plan.burst_size,
                        burst_observe=plan.burst_observe,
                    )
                )
        finally:
            await bench.close()
    bench = Bench(workdir / "work", plan.work_users)
    log(f"counting work per message ({plan.work_users} users, traced runner)")
    await bench.open()
    try:
        work = await run_work(bench, idle_seconds=plan.work_idle, message_seconds=plan.work_seconds)
    finally:
        await bench.close()
    bench = Bench(workdir / "fill", plan.fill_users)
    log(f"filling the duplicate filters ({plan.fill_users} users x {plan.fill_messages} messages)")
    await bench.open()
    try:
        fill = await run_fill(bench, messages_per_user=plan.fill_messages)
    finally:
        await bench.close()
    floor: dict[int, RunResult] = {}
    for count, seconds in plan.floor_messages.items():
        bench = Bench(workdir / f"floor-{count}", count, with_database=False)
        log(f"reference client (floor_client.py), {count} user(s)")
        await bench.open()
        try:
            floor[count] = await run_users(
                bench, idle_seconds=plan.floor_idle, message_seconds=seconds, floor=True
            )
        finally:
            await bench.close()
    return {"runs": runs, "work": work, "floor": floor, "fill": fill}


# --- the report -------------------------------------------------------------------------------------


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**pass**" if ok else "**MISS**")


def _per_run(runs: list[RunResult], pick: Any) -> Spread:
    return Spread.of([pick(run) for run in runs])


def render(results: Results) -> str:
    plan, runs, work = results.plan, results.runs, results.work
    m = results.machine
    out: list[str] = []
    add = out.append
    minutes = results.elapsed_s / 60
    add(f"Produced by `{results.command}` on {m['date']} in {minutes:.1f} min ({plan.name} mode).")
    add("")
    add(
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory']} RAM, {m['os']}; {m['python']}, "
        f"twitchio {m['twitchio']}, aiohttp {m['aiohttp']}, aiosqlite {m['aiosqlite']}, "
        f"SQLite {m['sqlite']}, twitchio-colorchanger {m['twitchio-colorchanger']} "
        f"(benchmarks from {m['checkout']})."
    )
    add("")
    add(
        f"Every figure is the median over {plan.runs} run(s) of a fresh runner process, with the "
        "smallest and largest run in brackets. MB = 10^6 bytes. ms = milliseconds."
    )
    add("")

    # overhead
    add("### Overhead per own message")
    add("")
    add(
        "Notification frame handed to the fake's WebSocket -> the colour PUT reaching the fake's "
        "handler. Each user sends one message per second, users evenly staggered; each user's first "
        "message (which loads its colour state) is measured apart."
    )
    add("")
    add(
        "| users | messages | first message p50 | p50 | p99 | max | CPU s per 1,000 messages "
        "(gross) | (net of idle) |"
    )
    add("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count in plan.overhead_users:
        group = runs.get(count, [])
        if not group:
            continue
        add(
            f"| {count:,} | {sum(r.messages for r in group):,} "
            f"| {_per_run(group, lambda r: percentile(r.warmup_ms, 50)).format(2)} "
            f"| {_per_run(group, lambda r: percentile(r.latencies_ms, 50)).format(2)} "
            f"| {_per_run(group, lambda r: percentile(r.latencies_ms, 99)).format(2)} "
            f"| {_per_run(group, lambda r: max(r.latencies_ms, default=float('nan'))).format(2)} "
            f"| {_per_run(group, lambda r: r.cpu_per_1000).format(3)} "
            f"| {_per_run(group, lambda r: r.cpu_per_1000_net).format(3)} |"
        )
    hooks = [us for group in runs.values() for run in group for us in run.call_vs_hook_us]
    add("")
    add(
        f"Method: the benchmark wraps the fake's `EventSub.send` and takes `time.monotonic()` right "
        f"before the frame goes to the socket; the PUT time is the fake's `ColorPut.time`, taken when "
        f"its handler starts. Both ends include fake-side work: JSON-encoding the frame "
        f"({results.encode_us:.0f} us) and aiohttp parsing the PUT. From the start of "
        f"`send_chat_message()` to the hook is another "
        f"{percentile(hooks, 50) if hooks else float('nan'):.0f} us (p50), not counted."
    )
    unmatched = sum(r.unmatched for group in runs.values() for r in group)
    statuses: Counter[int] = Counter()
    for group in runs.values():
        for run in group:
            statuses.update(run.statuses)
    add(f"PUT answers: {dict(statuses)}; messages without a PUT: {unmatched}.")
    add("")

    # scale
    add("### Scale: users in one runner process")
    add("")
    add(
        "| users | start -> all subscribed (s) | its CPU time (s) | start -> first subscribed (s) "
        "| slowest welcome -> subscribe (s) | RSS when subscribed (MB) | RSS after idle (MB) "
        f"| MB per extra user | idle CPU (% of a core, {plan.idle_seconds:.0f} s) | threads |"
    )
    add("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    counts = sorted(runs)
    base = runs.get(counts[0]) if counts else None
    base_rss = _per_run(base, lambda r: r.rss_subscribed_mb).median if base else float("nan")
    for count in counts:
        group = runs[count]
        rss = _per_run(group, lambda r: r.rss_subscribed_mb)
        extra = "-"
        if count != counts[0]:
            extra = Spread.of([(r.rss_subscribed_mb - base_rss) / (count - counts[0]) for r in group]).format(
                3
            )
        add(
            f"| {count:,} | {_per_run(group, lambda r: r.startup_s).format(2)} "
            f"| {_per_run(group, lambda r: r.startup_cpu_s).format(2)} "
            f"| {_per_run(group, lambda r: r.first_subscribed_s).format(2)} "
            f"| {_per_run(group, lambda r: r.welcome_to_subscribe_s).format(2)} | {rss.format(1)} "
            f"| {_per_run(group, lambda r: r.rss_after_idle_mb).format(1)} | {extra} "
            f"| {_per_run(group, lambda r: r.idle_cpu_percent).format(2)} "
            f"| {_per_run(group, lambda r: r.threads).format(0)} |"
        )
    add("")
    fill = results.fill
    add(
        f"Not visible at start-up: each user's duplicate filter (`seen_messages` = {results.dedup_size} "
        f"message ids) holds {results.dedup_bytes / 1e6:.3f} MB once full (Python heap, measured "
        "in-process with tracemalloc)."
        + (
            f" Measured on a runner: {fill.users} users each sending {fill.messages_per_user:,} own messages "
            f"(in back-to-back rounds of {FILL_GROUP}; {fill.puts:,} PUTs in all) grew its RSS from "
            f"{fill.rss_before_mb:.1f} to {fill.rss_after_mb:.1f} MB, {fill.per_user_mb:.3f} MB per user."
            if fill is not None
            else ""
        )
        + f" At 1,000 users that is {results.dedup_bytes * 1000 / 1e6:.0f} MB or more."
    )
    add("")

    # bursts
    bursts = [burst for run in runs.get(1, []) for burst in run.bursts]
    if bursts:
        add("### Burst: one user, one runner")
        add("")
        add(
            f"{plan.burst_size} messages, the last one `ccc #XXXXXX` (a unique colour), so the final "
            "colour is known. Delay = last notification written -> PUT of that colour. "
            f"PUTs after the final one are counted for {plan.burst_observe:g} s."
        )
        add("")
        add(
            "| burst | bursts | sending took (ms) | PUTs | PUTs after the final "
            "| last message -> final colour (ms) |"
        )
        add("|---|---:|---:|---:|---:|---:|")
        for kind in dict.fromkeys(burst.kind for burst in bursts):
            group_b = [b for b in bursts if b.kind == kind]
            sending = Spread.of([b.send_seconds * 1000 for b in group_b])
            add(
                f"| {kind} | {len(group_b)} | {sending.format(1)} "
                f"| {Spread.of([b.puts for b in group_b]).format(0)} "
                f"| {Spread.of([b.puts_after_final for b in group_b]).format(0)} "
                f"| {Spread.of([b.final_delay_ms for b in group_b]).format(2)} |"
            )
        burst_status: Counter[int] = Counter()
        for burst in bursts:
            burst_status.update(burst.statuses)
        add("")
        add(f"PUT answers in bursts: {dict(burst_status)}.")
        add("")

    # floor
    if results.floor:
        add("### Reference: the floor of Python + aiohttp on this machine")
        add("")
        add(
            "`benchmarks/floor_client.py`, measured exactly like the runner: plain aiohttp, one process, per "
            "user one EventSub WebSocket (10 s keepalives) and one subscription, one PUT per own message; "
            "no twitchio, database, logging or watchdog. Not a product: the least any Python client on "
            f"aiohttp can cost here. One run each, idle window {plan.floor_idle:.0f} s."
        )
        add("")
        add(
            "| users | start -> all subscribed (s) | RSS (MB) | idle CPU (% of a core) | p50 (ms) | p99 (ms) "
            "| max (ms) | CPU s per 1,000 messages (net of idle) |"
        )
        add("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for count, run in sorted(results.floor.items()):
            has = bool(run.latencies_ms)
            add(
                f"| {count:,} | {run.startup_s:.2f} | {run.rss_subscribed_mb:.1f} "
                f"| {run.idle_cpu_percent:.2f} "
                f"| {_fmt(percentile(run.latencies_ms, 50) if has else None, '')} "
                f"| {_fmt(percentile(run.latencies_ms, 99) if has else None, '')} "
                f"| {_fmt(max(run.latencies_ms) if has else None, '')} "
                f"| {_fmt(run.cpu_per_1000_net if has else None, '', 3)} |"
            )
        add("")

    # work
    if work is not None:
        add("### Work per own message")
        add("")
        add(
            f"A separate run of {work.users} users, {work.messages} steady messages (after one warm-up "
            f"message each), with every SQLite statement of the runner recorded by a trace callback "
            f"(`benchmarks/sqltrace.py`: wraps `sqlite3.connect` in the runner process, records each "
            f"statement and the connection's `total_changes`, so rows changed per statement are exact). "
            f"Not used for any timing."
        )
        add("")
        per = work.messages or 1
        add("| per own message | count |")
        add("|---|---:|")
        for name, value in sorted(work.helix.items()):
            add(f"| Helix `{name}` | {value / per:.2f} |")
        add(
            f"| database write transactions (committed, rows changed) | {work.write_transactions / per:.2f} |"
        )
        for table, value in sorted(work.rows_changed.items()):
            add(f"| rows changed in `{table}` | {value / per:.2f} |")
        for kind, value in sorted(work.message_statements.items()):
            add(f"| SQL `{kind}` | {value / per:.2f} |")
        add("")
        shapes = ", ".join(f"`{shape}` x{count}" for shape, count in work.transaction_shapes.most_common(4))
        add(f"Transactions in the message phase: {shapes}.")
        if work.put_to_commit_ms:
            add(
                f"PUT reaching the fake -> the next COMMIT of a colour record starting: "
                f"p50 {percentile(work.put_to_commit_ms, 50):.2f} ms, "
                f"max {max(work.put_to_commit_ms):.2f} ms (under the tracer)."
            )
        idle = ", ".join(
            f"`{kind}` {value / max(work.idle_seconds, 1e-9):.2f}/s"
            for kind, value in sorted(work.idle_statements.items())
        )
        add(f"Idle ({work.idle_seconds:.0f} s, {work.users} users): {idle or 'no statements'}.")
        first = ", ".join(
            f"`{kind}` {value / max(work.warmup_messages, 1):.2f}"
            for kind, value in sorted(work.first_message.items())
        )
        add(f"Each user's first message: {first}.")
        add("")

    # targets
    add("### Targets")
    add("")
    add("| target | measured | verdict |")
    add("|---|---|---|")

    def median(count: int, pick: Any) -> float | None:
        group = runs.get(count)
        return _per_run(group, pick).median if group else None

    p50 = median(100, lambda r: percentile(r.latencies_ms, 50))
    p99 = median(100, lambda r: percentile(r.latencies_ms, 99))
    add(f"| overhead p50 <= 1 ms at 100 users | {_fmt(p50, ' ms')} | {_verdict(_le(p50, TARGETS['p50']))} |")
    add(f"| overhead p99 <= 2 ms at 100 users | {_fmt(p99, ' ms')} | {_verdict(_le(p99, TARGETS['p99']))} |")
    rss_1000 = median(1000, lambda r: r.rss_subscribed_mb)
    rss_idle = median(1000, lambda r: r.rss_after_idle_mb)
    worst = None if rss_1000 is None else max(rss_1000, rss_idle or 0.0)
    add(
        f"| 1,000 users <= 150 MB total | {_fmt(rss_1000, ' MB')} subscribed, "
        f"{_fmt(rss_idle, ' MB')} after idle | {_verdict(_le(worst, TARGETS['rss_1000']))} |"
    )
    per_user = (rss_1000 - base_rss) / (1000 - counts[0]) if rss_1000 is not None and counts else None
    # The filter's own size is exact (tracemalloc); the fill's RSS growth is a noisier cross-check.
    steady = results.dedup_bytes / 1e6
    cross_check = f", RSS +{fill.per_user_mb:.3f} MB per user in the fill" if fill is not None else ""
    add(
        f"| <= 0.1 MB per extra user | {_fmt(per_user, ' MB', 3)} at start-up; "
        f"+{steady:.3f} MB once the duplicate filter is full{cross_check} "
        f"| {_verdict(_le(per_user, TARGETS['per_user']))} at start-up, "
        f"{_verdict(_le(None if per_user is None else per_user + steady, TARGETS['per_user']))}"
        " once users have chatted |"
    )
    startup = median(1000, lambda r: r.startup_s)
    add(
        f"| 1,000 users all subscribed within 30 s | {_fmt(startup, ' s')} "
        f"| {_verdict(_le(startup, TARGETS['startup_1000']))} |"
    )
    idle_1000 = median(1000, lambda r: r.idle_cpu_percent)
    add(
        f"| idle CPU <= 1 % of a core at 1,000 users | {_fmt(idle_1000, ' %')} "
        f"| {_verdict(_le(idle_1000, TARGETS['idle_percent']))} |"
    )
    gross = median(100, lambda r: r.cpu_per_1000)
    net = median(100, lambda r: r.cpu_per_1000_net)
    add(
        f"| <= 0.5 CPU s per 1,000 own messages (100 users) | {_fmt(gross, ' s', 3)} gross, "
        f"{_fmt(net, ' s', 3)} net of idle | {_verdict(_le(gross, TARGETS['cpu_per_1000']))} |"
    )
    if work is not None:
        helix_per = sum(work.helix.values()) / (work.messages or 1)
        add(f"| <= 1 Helix request per own message | {helix_per:.2f} | {_verdict(helix_per <= 1.0 + 1e-9)} |")
    if bursts:
        beyond = max(b.puts_after_final for b in bursts)
        add(f"| no PUT after the final one in a burst | {beyond} (worst burst) | {_verdict(beyond == 0)} |")
    if work is not None:
        writes = work.write_transactions / (work.messages or 1)
        lag = percentile(work.put_to_commit_ms, 50) if work.put_to_commit_ms else float("nan")
        # A synchronous write per change: about one commit per message, right after its PUT.
        synchronous = writes >= 0.9 and lag == lag and lag < WRITE_BEHIND_MS
        add(
            f"| no DB write on the message path that can wait | {writes:.2f} write transaction(s) per "
            f"message, COMMIT p50 {_fmt(lag, ' ms')} after the PUT "
            f"({'one per change, awaited by it' if synchronous else 'deferred or batched'}) "
            f"| {_verdict(not synchronous)} |"
        )
    add("")
    return "\n".join(out)


def _le(value: float | None, limit: float) -> bool | None:
    if value is None or value != value:
        return None
    return value <= limit


def _fmt(value: float | None, unit: str, digits: int = 2) -> str:
    if value is None or value != value:
        return "n/a"
    return f"{value:.{digits}f}{unit}"


def _jsonable(value: Any) -> Any:
    """Plain JSON: keys as strings (some are ints or tuples), anything unknown as its str()."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 and 5 users, a few messages")
    parser.add_argument("--runs", type=int, help="runner runs per user count (default 3, quick 1)")
    parser.add_argument("--idle-seconds", type=float, help="idle CPU window (default 60, quick 2)")
    parser.add_argument("--output", type=Path, help="also write the markdown here")
    parser.add_argument("--json", type=Path, help="write the raw results as JSON here")
    parser.add_argument(
        "--workdir", type=Path, help="keep databases and runner logs here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.runs is not None or args.idle_seconds is not None:
        fields = asdict(plan)
        if args.runs is not None:
            fields["runs"] = max(1, args.runs)
        if args.idle_seconds is not None:
            fields["idle_seconds"] = args.idle_seconds
        plan = Plan(**fields)
    command = "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="colorchanger-bench-") as temp:
        workdir = args.workdir or Path(temp)
        measured = asyncio.run(measure(plan, workdir))
    from colorchanger_ext.settings import ColorSettings

    size = ColorSettings().seen_messages
    results = Results(
        plan=plan,
        command=command.strip(),
        machine=machine(),
        runs=measured["runs"],
        floor=measured["floor"],
        work=measured["work"],
        fill=measured["fill"],
        dedup_bytes=dedup_memory(size),
        dedup_size=size,
        encode_us=frame_encode_us(),
        elapsed_s=time.monotonic() - started,
    )
    text = render(results)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(_jsonable(asdict(results)), indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
