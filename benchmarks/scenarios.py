"""The measurements: one runner run at N users (start-up, memory, idle CPU, per-message overhead,
bursts), and one traced run that counts database statements and Helix requests per own message."""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import gc
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colorchanger_ext.testing import ColorPut, FakeUser

from .harness import Bench, BenchmarkError, RunnerProcess, cpu_seconds, memory_kib

SQLTRACE = Path(__file__).resolve().parent / "sqltrace.py"


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Keep this process's garbage collector out of a timed phase: the fake's pauses would land in
    the measured latencies otherwise. What the phase allocates is collected right after."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def pace(start: float, offset: float) -> None:
    """Load generation: wait until ``start + offset`` (no wait when already late)."""
    delay = start + offset - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


# --- one runner run at N users ----------------------------------------------------------------------


@dataclass
class BurstResult:
    kind: str  # "spread" (100 messages evenly over 1 s) or "back-to-back"
    messages: int
    send_seconds: float  # first to last notification written
    puts: int  # colour PUTs from the first message to the end of the observation window
    puts_after_final: int
    final_delay_ms: float  # last message written -> PUT of the final (ccc) colour arrived
    statuses: dict[int, int]


@dataclass
class RunResult:
    users: int
    startup_s: float = float("nan")  # exec -> every user subscribed
    first_subscribed_s: float = float("nan")  # exec -> the first user subscribed
    startup_cpu_s: float = float("nan")  # the runner's CPU time when every user was subscribed
    welcome_to_subscribe_s: float = float("nan")  # slowest session welcome -> its subscription
    rss_subscribed_mb: float = float("nan")
    rss_after_idle_mb: float = float("nan")
    rss_end_mb: float = float("nan")
    peak_rss_mb: float = float("nan")
    threads: int = 0
    idle_seconds: float = 0.0
    idle_cpu_s: float = float("nan")
    warmup_ms: list[float] = field(default_factory=list)  # each user's first message (state loaded)
    latencies_ms: list[float] = field(default_factory=list)
    messages: int = 0
    puts: int = 0
    unmatched: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    message_phase_s: float = 0.0
    message_cpu_s: float = float("nan")
    call_vs_hook_us: list[float] = field(default_factory=list)  # send_chat_message() start -> hook
    bursts: list[BurstResult] = field(default_factory=list)

    @property
    def idle_cpu_percent(self) -> float:
        return self.idle_cpu_s / self.idle_seconds * 100 if self.idle_seconds else float("nan")

    @property
    def cpu_per_1000(self) -> float:
        return self.message_cpu_s / self.messages * 1000 if self.messages else float("nan")

    @property
    def cpu_per_1000_net(self) -> float:
        """Less what the same stretch would have cost idle (keepalives, watchdogs, polling)."""
        if not self.messages or not self.idle_seconds:
            return float("nan")
        idle_rate = self.idle_cpu_s / self.idle_seconds
        return (self.message_cpu_s - idle_rate * self.message_phase_s) / self.messages * 1000


def _unix(stamp: str) -> float:
    """The fake's RFC 3339 UTC timestamps ("...T12:00:00.123456789Z") as unix seconds."""
    seconds, _, fraction = stamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(seconds, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")


def _subscribed_at(bench: Bench, runner: RunnerProcess) -> float:
    """Seconds from exec to the earliest current subscription (from its creation time)."""
    wall_start = time.time() - (time.monotonic() - runner.started_at)
    return min(_unix(sub.created_at) for sub in bench.fake.eventsub.subscriptions.values()) - wall_start


def _welcome_to_subscribe(bench: Bench) -> float:
    """The slowest session's welcome -> its first subscription: Twitch closes a session that has
    none 10 s after its welcome (4003), so this is the margin a start-up under load keeps."""
    hub = bench.fake.eventsub
    first: dict[str, float] = {}
    for sub in hub.subscriptions.values():
        created = _unix(sub.created_at)
        first[sub.session_id] = min(first.get(sub.session_id, created), created)
    gaps = [
        created - _unix(hub.sessions[session_id].connected_at)
        for session_id, created in first.items()
        if session_id in hub.sessions
    ]
    return max(gaps, default=float("nan"))


def _pair(
    bench: Bench, sent: list[tuple[FakeUser, str]], since: float
) -> tuple[list[float], int, Counter[int]]:
    """Latency (ms) of each message: its notification written -> the next PUT for that user."""
    puts_by_user: dict[str, list[Any]] = {}
    for put in bench.puts_since(since):
        puts_by_user.setdefault(put.user_id, []).append(put)
    next_put: dict[str, int] = {}
    latencies: list[float] = []
    unmatched = 0
    statuses: Counter[int] = Counter()
    for user, message_id in sent:
        written = bench.sent[message_id]
        puts = puts_by_user.get(user.id, [])
        index = next_put.get(user.id, 0)
        while index < len(puts) and puts[index].time < written:
            index += 1
        if index >= len(puts):
            unmatched += 1
            continue
        latencies.append((puts[index].time - written) * 1000)
        statuses[puts[index].status] += 1
        next_put[user.id] = index + 1
    return latencies, unmatched, statuses


async def _messages(
    bench: Bench,
    runner: RunnerProcess,
    users: list[FakeUser],
    *,
    seconds: float,
    per_user_rate: float,
    result: RunResult | None,
    label: str,
) -> tuple[list[float], int, Counter[int], float, float]:
    """Each user says one message every 1/rate s, users evenly staggered; latencies and CPU."""
    interval = 1.0 / (per_user_rate * len(users))
    total = max(len(users), round(seconds * per_user_rate * len(users)))
    sent: list[tuple[FakeUser, str]] = []
    with no_gc_pauses():
        start = time.monotonic()
        cpu_start = cpu_seconds(runner.pid)
        for index in range(total):
            await pace(start, index * interval)
            user = users[index % len(users)]
            called = time.monotonic()
            message_id = await bench.say(user, f"{label} message {index}")
            sent.append((user, message_id))
            if result is not None:
                result.call_vs_hook_us.append((bench.sent[message_id] - called) * 1e6)
        await pace(start, total * interval)
        cpu_end = cpu_seconds(runner.pid)
        phase = time.monotonic() - start
        await bench.wait_for_puts(runner, total, since=start, timeout=30 + total * 0.01)
    latencies, unmatched, statuses = _pair(bench, sent, start)
    return latencies, unmatched, statuses, cpu_end - cpu_start, phase


async def _burst(
    bench: Bench,
    runner: RunnerProcess,
    user: FakeUser,
    *,
    size: int,
    spread: bool,
    number: int,
    observe: float,
) -> BurstResult:
    """``size`` messages, the last one ``ccc #XXXXXX`` (unique), evenly over 1 s or back to back."""
    final = f"#{0x20 + number % 200:02X}{0x40 + number % 150:02X}{(7 * number) % 256:02X}"
    ids: list[str] = []
    with no_gc_pauses():
        start = time.monotonic()
        for index in range(size):
            if spread:
                await pace(start, index / size)
            text = f"ccc {final}" if index == size - 1 else f"burst {number} message {index}"
            ids.append(await bench.say(user, text))
        first, last = bench.sent[ids[0]], bench.sent[ids[-1]]
        (final_put,) = await bench.wait_for_puts(
            runner,
            1,
            since=start,
            user_id=user.id,
            predicate=lambda put: put.color.upper() == final,
            timeout=30,
        )
    # A timed observation window: any PUT after the final one would be wasted work.
    await runner.guard(asyncio.sleep(observe), "the observation window")
    puts = bench.puts_since(first, user.id)
    return BurstResult(
        kind="spread over 1 s" if spread else "back to back",
        messages=size,
        send_seconds=last - first,
        puts=len(puts),
        puts_after_final=sum(1 for put in puts if put.time > final_put.time),
        final_delay_ms=(final_put.time - last) * 1000,
        statuses=dict(Counter(put.status for put in puts)),
    )


async def run_users(
    bench: Bench,
    *,
    idle_seconds: float,
    message_seconds: float,
    bursts: int = 0,
    burst_size: int = 100,
    burst_observe: float = 1.0,
    floor: bool = False,
) -> RunResult:
    """Start a runner for every user of ``bench`` and measure it; the runner is stopped at the end.

    ``floor``: the reference client (``floor_client.py``) instead of the runner.
    """
    result = RunResult(users=bench.user_count)
    runner = bench.floor_client() if floor else bench.runner()
    await runner.start()
    try:
        result.startup_s = await bench.wait_all_subscribed(runner, timeout=60 + bench.user_count * 0.2)
        result.startup_cpu_s = cpu_seconds(runner.pid)
        result.first_subscribed_s = _subscribed_at(bench, runner)
        result.welcome_to_subscribe_s = _welcome_to_subscribe(bench)
        memory = memory_kib(runner.pid)
        result.rss_subscribed_mb = memory["VmRSS"] * 1024 / 1e6
        result.threads = memory["Threads"]
        log(
            f"{bench.user_count} user(s): all subscribed {result.startup_s:.2f} s after start, "
            f"RSS {result.rss_subscribed_mb:.1f} MB"
        )

        if idle_seconds > 0:  # a timed window is what is measured here
            cpu_start, start = cpu_seconds(runner.pid), time.monotonic()
            await runner.guard(asyncio.sleep(idle_seconds), "the idle window")
            result.idle_cpu_s = cpu_seconds(runner.pid) - cpu_start
            result.idle_seconds = time.monotonic() - start
            result.rss_after_idle_mb = memory_kib(runner.pid)["VmRSS"] * 1024 / 1e6
            log(f"  idle {result.idle_seconds:.0f} s: {result.idle_cpu_percent:.2f} % of a core")

        if message_seconds > 0:
            # Warm-up: each user's first message loads its colour state; measured apart.
            warm, _, _, _, _ = await _messages(
                bench, runner, bench.users, seconds=1, per_user_rate=1, result=None, label="warm-up"
            )
            result.warmup_ms = warm
            latencies, unmatched, statuses, cpu, phase = await _messages(
                bench,
                runner,
                bench.users,
                seconds=message_seconds,
                per_user_rate=1,
                result=result,
                label="steady",
            )
            result.latencies_ms, result.unmatched, result.statuses = latencies, unmatched, dict(statuses)
            result.messages, result.puts = len(latencies) + unmatched, len(latencies)
            result.message_cpu_s, result.message_phase_s = cpu, phase
            log(
                f"  {result.messages} messages over {phase:.0f} s: "
                f"p50 {sorted(latencies)[len(latencies) // 2]:.2f} ms, max {max(latencies):.2f} ms, "
                f"{result.cpu_per_1000:.2f} CPU s / 1000"
            )

        for number in range(bursts):
            for spread in (True, False):
                burst = await _burst(
                    bench,
                    runner,
                    bench.users[0],
                    size=burst_size,
                    spread=spread,
                    number=bench.runs * 10 + number * 2 + spread,
                    observe=burst_observe,
                )
                result.bursts.append(burst)
                log(
                    f"  burst ({burst.kind}): {burst.puts} PUTs, final colour "
                    f"{burst.final_delay_ms:.2f} ms after the last message"
                )
        memory = memory_kib(runner.pid)
        result.rss_end_mb = memory["VmRSS"] * 1024 / 1e6
        result.peak_rss_mb = memory["VmHWM"] * 1024 / 1e6
    finally:
        code = await runner.stop()
    if code != 0:
        raise BenchmarkError(f"the runner exited with {code}:\n{runner.log_tail()}")
    await bench.wait_all_gone()
    return result


# --- the duplicate filter filling up ----------------------------------------------------------------


@dataclass
class FillResult:
    users: int
    messages_per_user: int
    puts: int
    rss_before_mb: float
    rss_after_mb: float

    @property
    def per_user_mb(self) -> float:
        return (self.rss_after_mb - self.rss_before_mb) / self.users


def _has_color(color: str) -> Callable[[ColorPut], bool]:
    return lambda put: put.color.upper() == color


FILL_GROUP = 10
"""Messages each user sends back to back before the fill waits for the runner to catch up: small,
so the resident memory measured is what is kept, not the high-water mark of a flood."""


async def run_fill(bench: Bench, *, messages_per_user: int) -> FillResult:
    """Every user sends ``messages_per_user`` own messages (rounds of ``FILL_GROUP``, each ending
    with a unique ``ccc``): resident memory before and after, i.e. what a long-running runner holds
    once each user's duplicate filter is full."""
    runner = bench.runner()
    await runner.start()
    try:
        await bench.wait_all_subscribed(runner, timeout=60 + bench.user_count * 0.2)
        start = time.monotonic()
        for user in bench.users:  # loads each user's colour state first
            await bench.say(user, "hello")
        await bench.wait_for_puts(runner, bench.user_count, since=start, timeout=30)
        before = memory_kib(runner.pid)["VmRSS"] * 1024 / 1e6
        start = time.monotonic()
        rounds = max(1, messages_per_user // FILL_GROUP)
        for number in range(rounds):
            final = f"#{number // 256 % 256:02X}00{number % 256:02X}"
            round_start = time.monotonic()
            for user in bench.users:
                for index in range(FILL_GROUP - 1):
                    await bench.say(user, f"fill {number} {index}")
                await bench.say(user, f"ccc {final}")
            await bench.wait_for_puts(
                runner,
                bench.user_count,
                since=round_start,
                predicate=_has_color(final),
                timeout=60,
            )
        after = memory_kib(runner.pid)["VmRSS"] * 1024 / 1e6
        puts = len(bench.puts_since(start))
    finally:
        code = await runner.stop()
    if code != 0:
        raise BenchmarkError(f"the runner exited with {code}:\n{runner.log_tail()}")
    await bench.wait_all_gone()
    sent = rounds * FILL_GROUP
    log(f"  {bench.user_count} users x {sent} messages: RSS {before:.1f} -> {after:.1f} MB")
    return FillResult(bench.user_count, sent, puts, before, after)


# --- the traced run: database statements and Helix requests per own message -------------------------


@dataclass
class WorkResult:
    users: int
    messages: int
    puts: int
    idle_seconds: float
    idle_statements: Counter[str]  # by kind, in the idle window
    message_statements: Counter[str]  # by kind, in the message phase
    write_transactions: int  # transactions (or autocommit statements) that changed rows
    rows_changed: Counter[str]  # by table, in the message phase
    helix: Counter[str]  # "METHOD path" in the message phase
    put_to_commit_ms: list[float]  # a PUT arrived -> the COMMIT of the colour record started
    first_message: Counter[str]  # statements in the warm-up phase (each user's first message)
    warmup_messages: int
    transaction_shapes: Counter[str]  # e.g. "BEGIN IMMEDIATE; SELECT; UPDATE users; COMMIT"


def _kind(sql: str) -> str:
    words = sql.split()
    if not words:
        return "?"
    head = words[0].upper()
    if head == "INSERT":
        return "INSERT " + _table(sql)
    if head in ("UPDATE", "DELETE"):
        return f"{head} {_table(sql)}"
    if head == "PRAGMA":
        return "PRAGMA " + words[1].split("=")[0].lower() if len(words) > 1 else "PRAGMA"
    return head


def _table(sql: str) -> str:
    words = sql.replace("(", " ").split()
    upper = [w.upper() for w in words]
    for marker in ("INTO", "UPDATE", "FROM"):
        if marker in upper:
            index = upper.index(marker) + 1
            if index < len(words):
                return words[index]
    return "?"


def analyse_trace(
    events: list[list[Any]], start: float, end: float
) -> tuple[Counter[str], int, Counter[str], Counter[str], list[tuple[float, str]]]:
    """Statements by kind, write transactions, rows changed by table, transaction shapes, commits."""
    kinds: Counter[str] = Counter()
    rows: Counter[str] = Counter()
    shapes: Counter[str] = Counter()
    commits: list[tuple[float, str]] = []
    writes = 0
    by_connection: dict[int, list[list[Any]]] = {}
    for event in events:
        by_connection.setdefault(int(event[1]), []).append(event)
    for stream in by_connection.values():
        open_txn: list[str] | None = None
        txn_changed = 0
        for index, (at, _, changes_before, sql) in enumerate(stream):
            changes_after = stream[index + 1][2] if index + 1 < len(stream) else changes_before
            changed = changes_after - changes_before
            inside = start <= at <= end
            kind = _kind(sql)
            head = kind.split()[0]
            if inside:
                kinds[kind] += 1
                if changed and head in ("INSERT", "UPDATE", "DELETE"):
                    rows[_table(sql)] += changed
            if head == "BEGIN":
                open_txn, txn_changed = [kind], 0
            elif head in ("COMMIT", "END", "ROLLBACK") and open_txn is not None:
                open_txn.append(head)
                if inside:
                    shapes["; ".join(open_txn)] += 1
                    if txn_changed and head != "ROLLBACK":
                        writes += 1
                        commits.append((at, " ".join(open_txn)))
                open_txn = None
            elif open_txn is not None:
                open_txn.append(kind.split(" RETURNING")[0] if head != "SELECT" else "SELECT")
                txn_changed += changed if head in ("INSERT", "UPDATE", "DELETE") else 0
            elif inside and changed and head in ("INSERT", "UPDATE", "DELETE"):
                writes += 1  # autocommit
                commits.append((at, kind))
    return kinds, writes, rows, shapes, commits


async def run_work(bench: Bench, *, idle_seconds: float, message_seconds: float) -> WorkResult:
    """A runner under the SQLite tracer: what each own message costs in statements and requests."""
    trace_path = bench.workdir / "sqltrace.json"
    runner = bench.runner(command=[sys.executable, str(SQLTRACE), str(trace_path)])
    await runner.start()
    try:
        await bench.wait_all_subscribed(runner, timeout=60 + bench.user_count * 0.2)
        idle_start = time.monotonic()
        await runner.guard(asyncio.sleep(idle_seconds), "the idle window")
        idle_end = time.monotonic()
        warm_start = time.monotonic()
        warm, _, _, _, _ = await _messages(
            bench, runner, bench.users, seconds=1, per_user_rate=1, result=None, label="warm-up"
        )
        warm_end = time.monotonic()
        start = time.monotonic()
        latencies, unmatched, _, _, _ = await _messages(
            bench, runner, bench.users, seconds=message_seconds, per_user_rate=1, result=None, label="work"
        )
        steady_puts = bench.puts_since(start)
        helix = Counter(
            f"{request.method} {request.path}" for request in bench.fake.requests if request.time >= start
        )
    finally:
        code = await runner.stop()
    end = time.monotonic()
    if code != 0:
        raise BenchmarkError(f"the traced runner exited with {code}:\n{runner.log_tail()}")
    await bench.wait_all_gone()
    events = json.loads(trace_path.read_text())["events"]
    idle_kinds, _, _, _, _ = analyse_trace(events, idle_start, idle_end)
    first_kinds, _, _, _, _ = analyse_trace(events, warm_start, warm_end)
    kinds, writes, rows, shapes, commits = analyse_trace(events, start, end)
    put_to_commit: list[float] = []
    colour_commits = sorted(at for at, shape in commits if "UPDATE users" in shape)
    pointer = 0
    for put in sorted(steady_puts, key=lambda p: p.time):
        while pointer < len(colour_commits) and colour_commits[pointer] < put.time:
            pointer += 1
        if pointer < len(colour_commits):
            put_to_commit.append((colour_commits[pointer] - put.time) * 1000)
            pointer += 1
    return WorkResult(
        users=bench.user_count,
        messages=len(latencies) + unmatched,
        puts=len(steady_puts),
        idle_seconds=idle_end - idle_start,
        idle_statements=idle_kinds,
        message_statements=kinds,
        write_transactions=writes,
        rows_changed=rows,
        helix=helix,
        put_to_commit_ms=put_to_commit,
        first_message=first_kinds,
        warmup_messages=len(warm),
        transaction_shapes=shapes,
    )
