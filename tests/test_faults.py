"""Twitch's faults and hostile input, each an end-to-end test named after the fault.

Most tests run the runner's ``Supervisor`` in-process (``start_supervisor`` in tests/conftest.py):
real twitchio against the fake Twitch, a second ``Accounts`` on the same file as "the CLI", nothing
of ours mocked. "Recovers" means an own
message sent after the fault changes the colour again, without a restart of the process and
without a duplicate. Each recovery time is measured (monotonic, from injecting the fault to the
colour PUT arriving at the fake) and collected in ``RECOVERIES``; with ``RECOVERY_REPORT=<file or
directory>`` set, a markdown table of them is appended there. The numbers are benchmarks, never
asserted, except the issue's stated bounds, checked with bounded waits.

Every timing knob is compressed (``pytestmark`` below): keepalives every 0.2 s, a 1 s silence
limit, restarts after 0.1-0.2 s, Helix retries after 0.05-0.1 s.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import random
import re
import sqlite3
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot_runner.supervisor import Backoff
from bot_runner.userbot import UserBot
from colorchanger_ext.changer import RetryPolicy
from colorchanger_ext.testing import FakeSession, FakeTwitch, FakeUser

from .conftest import (
    PROCESS_TIMEOUT,
    SILENCE_LIMIT,
    Harness,
    Runner,
    StartSupervisor,
    add,
    fast_keepalives,
    puts_of,
    refreshes,
    wait_put,
)

BACKOFF = Backoff(first=0.2, cap=2.0, healthy_after=60)
RETRY = RetryPolicy(first=0.1, cap=0.8, request_timeout=2.0)
RECOVERS_AFTER_BACKOFF = BACKOFF.first + 2.0
"""The issue's bound for drops and close codes: the (first) restart delay plus 2 s."""
RECOVERS_AFTER_SILENCE = SILENCE_LIMIT + 5.0
"""The issue's bound for silence: the keepalive timeout (here the silence limit) plus 5 s."""

pytestmark = [
    fast_keepalives,
    pytest.mark.supervisor(silence_limit=SILENCE_LIMIT, backoff=BACKOFF, retry=RETRY, seed=7),
    pytest.mark.usefixtures("reconnect_fix"),
]


# -- recovery report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    fault: str
    test: str
    seconds: float
    measured: str


RECOVERIES: list[Recovery] = []


def current_test() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].rsplit(" ", 1)[0]


def record_recovery(fault: str, seconds: float, measured: str = "fault injected -> PUT landed") -> None:
    RECOVERIES.append(Recovery(fault, current_test(), seconds, measured))


def write_recovery_report(title: str, rows: Iterable[Recovery]) -> None:
    """Append a markdown table to $RECOVERY_REPORT (a file, or a directory to put recovery.md in)."""
    target = os.environ.get("RECOVERY_REPORT")
    rows = list(rows)
    if not target or not rows:
        return
    path = Path(target)
    if path.is_dir():
        path = path / "recovery.md"
    lines = [
        f"## {title}",
        "",
        "| fault | test | recovery (s) | measured |",
        "|---|---|---:|---|",
        *(f"| {r.fault} | `{r.test}` | {r.seconds:.3f} | {r.measured} |" for r in rows),
        "",
    ]
    with path.open("a", encoding="utf-8") as report:
        report.write("\n".join(lines) + "\n")


@pytest.fixture(scope="module", autouse=True)
def recovery_report() -> Iterator[None]:
    yield
    write_recovery_report("tests/test_faults.py", RECOVERIES)


# -- fixtures and helpers -----------------------------------------------------------------------


class LogWatcher(logging.Handler):
    """Every log record of the test, with a way to wait for one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._loop.call_soon_threadsafe(self._changed.set)

    def matching(self, pattern: str, *, level: int = logging.NOTSET) -> list[str]:
        regex = re.compile(pattern)
        return [r.getMessage() for r in self.records if r.levelno >= level and regex.search(r.getMessage())]

    async def wait_for(self, pattern: str, *, count: int = 1, timeout: float = 5.0) -> list[str]:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while len(found := self.matching(pattern)) < count:
                self._changed.clear()
                await self._changed.wait()
        return found


@pytest.fixture
async def logs() -> AsyncIterator[LogWatcher]:
    watcher = LogWatcher()
    root = logging.getLogger()
    saved = root.level
    root.setLevel(logging.INFO)
    root.addHandler(watcher)
    try:
        yield watcher
    finally:
        root.removeHandler(watcher)
        root.setLevel(saved)


def open_sockets(twitch: FakeTwitch) -> int:
    return sum(session.open_sockets for session in twitch.eventsub.sessions.values())


async def recovers(
    h: Harness,
    user: FakeUser,
    fault: str,
    fault_at: float,
    *,
    within: float,
    exclude: Iterable[FakeSession] = (),
    colors: tuple[str, str] = ("coral", "sea_green"),
) -> float:
    """Wait (at most ``within`` s) until an own message changes the colour again; check no duplicate."""
    async with asyncio.timeout(within):
        session = await h.connected(user, exclude=exclude, timeout=within)
        put = await h.change(user, colors[0], timeout=within)
    seconds = put.time - fault_at
    record_recovery(fault, seconds)
    # A second change as a sentinel: everything since the fault happened exactly once.
    await h.change(user, colors[1])
    assert puts_of(h.twitch, user, since=fault_at) == list(colors)
    assert [s.session_id for s in h.twitch.subscriptions(user_id=user.id)] == [session.id]
    return seconds


# -- 1. drops and close codes, and the backoff ----------------------------------------------------


def test_backoff_first_retry_fast_then_growing_capped_with_jitter() -> None:
    backoff = Backoff(first=1.0, cap=30.0, healthy_after=120)
    rng = random.Random(42)
    samples = {attempt: [backoff.delay(attempt, rng) for _ in range(200)] for attempt in range(12)}
    assert all(0.5 <= d <= 1.0 for d in samples[0])  # the first retry is quick
    for attempt in range(1, 12):
        nominal = min(30.0, 2.0**attempt)
        assert all(0.5 * nominal <= d <= nominal for d in samples[attempt])  # 50-100 % jitter
        assert min(samples[attempt]) >= max(samples[attempt - 1]) or nominal == 30.0  # growing
    assert max(samples[11]) <= 30.0  # capped
    assert len({round(d, 6) for d in samples[3]}) > 100  # jittered, not one fixed value
    # Days of failures in a row: the exponent must not overflow a float.
    assert 15.0 <= backoff.delay(5000, rng) <= 30.0
    assert 0.5 <= RetryPolicy(first=1.0, cap=1.0).delay(5000, rng) <= 1.0


class ManualClock:
    """The supervisor's clock for "how long did the bot run", moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_backoff_grows_over_failed_starts_and_resets_after_a_healthy_run(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, logs: LogWatcher
) -> None:
    backoff = Backoff(first=0.1, cap=2.0, healthy_after=30)
    clock, seed = ManualClock(), 3
    h = await start_supervisor(backoff=backoff, rng=random.Random(seed), clock=clock)
    replay = random.Random(seed)  # the supervisor's rng only ever draws restart delays
    alice = twitch.add_user("alice")
    twitch.fail_helix(path="eventsub/subscriptions", status=500, count=3)  # three failed starts
    await h.start_user(alice)
    delays = [f"{backoff.delay(attempt, replay):.1f}" for attempt in range(3)]

    # A run that was not healthy for long: the next failure keeps growing the delay.
    session = await h.connected(alice)
    await twitch.drop_session(session)
    session = await h.connected(alice, exclude=[session])
    delays.append(f"{backoff.delay(3, replay):.1f}")

    # A run longer than healthy_after: the next failure starts from the first delay again.
    clock.now += backoff.healthy_after
    await twitch.drop_session(session)
    await h.connected(alice, exclude=[session])
    delays.append(f"{backoff.delay(0, replay):.1f}")

    logged = [
        re.sub(r".*restarting in ([\d.]+) s$", r"\1", m) for m in logs.matching(r"alice: .*restarting in")
    ]
    assert logged == delays
    assert float(delays[0]) <= backoff.first < float(delays[2]) < float(delays[3])
    assert float(delays[4]) <= backoff.first


async def test_websocket_dropped_without_close_frame_reconnects_and_recovers(
    twitch: FakeTwitch, start_supervisor: StartSupervisor
) -> None:
    h = await start_supervisor()
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    session = await h.start_user(alice)
    bob_session = await h.start_user(bob)
    bob_bot = h.bot(bob)

    fault_at = time.monotonic()
    await twitch.drop_session(session)
    await recovers(h, alice, "WebSocket dropped (no close frame)", fault_at, within=RECOVERS_AFTER_BACKOFF)

    assert h.bot(bob) is bob_bot
    assert bob_session in twitch.sessions(user_id=bob.id)
    await h.change(bob, "red")


@pytest.mark.parametrize("code", [4000, 4002, 4005, 4006, 4007])
async def test_websocket_closed_with_code_reconnects_and_recovers(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, logs: LogWatcher, code: int
) -> None:
    h = await start_supervisor()
    alice = twitch.add_user("alice")
    session = await h.start_user(alice)

    fault_at = time.monotonic()
    await twitch.close_session(session, code, "fault injected")
    await recovers(h, alice, f"WebSocket closed {code}", fault_at, within=RECOVERS_AFTER_BACKOFF)
    assert logs.matching(r"alice: connection to Twitch closed.*restarting in")


# -- 2. session_reconnect ---------------------------------------------------------------------------


async def test_session_reconnect_loses_and_repeats_no_message_and_leaves_no_socket_open(
    twitch: FakeTwitch, start_supervisor: StartSupervisor
) -> None:
    h = await start_supervisor()
    alice = twitch.add_user("alice")
    session = await h.start_user(alice)
    bot = h.bot(alice)

    fault_at = time.monotonic()
    await twitch.send_reconnect(session)
    assert session.reconnecting  # the fake holds chat until the client's welcome on the new socket
    await h.say(alice, "ccc red")
    put = await wait_put(twitch, alice, "red", since=fault_at)
    record_recovery("session_reconnect (message sent mid-move)", put.time - fault_at)
    await twitch.wait_until(
        lambda: not session.reconnecting and session.open_sockets == 1, what="the move to the reconnect URL"
    )
    await h.change(alice, "coral")

    assert h.bot(alice) is bot  # followed in place: no restart
    assert puts_of(twitch, alice, since=fault_at, status=None) == ["red", "coral"]  # neither lost nor twice
    assert len(bot.websocket_subscriptions()) == 1  # the client still tracks the socket it moved to
    assert [s.session_id for s in twitch.subscriptions(user_id=alice.id)] == [session.id]

    await h.close()
    await twitch.wait_until(lambda: open_sockets(twitch) == 0, what="every socket closed")


# -- 3. silence -------------------------------------------------------------------------------------


async def test_silence_past_keepalive_timeout_is_detected_and_recovered(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, logs: LogWatcher
) -> None:
    h = await start_supervisor()
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    session = await h.start_user(alice)
    await h.start_user(bob)
    bob_bot = h.bot(bob)

    fault_at = time.monotonic()
    twitch.silence(session)
    await recovers(
        h,
        alice,
        "silence past the keepalive timeout",
        fault_at,
        within=RECOVERS_AFTER_SILENCE,
        exclude=[session],
    )
    assert logs.matching(r"alice: no message from Twitch for [\d.]+ s; reconnecting")
    assert h.bot(bob) is bob_bot
    await twitch.wait_until(lambda: session.closed, what="the silent socket closed by the client")


# -- 4. 4001 and 4003 -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [4001, 4003])
async def test_close_4001_or_4003_twitchio_stays_down_supervisor_recovers(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, logs: LogWatcher, code: int
) -> None:
    h = await start_supervisor()
    alice = twitch.add_user("alice")
    session = await h.start_user(alice)
    bot = h.bot(alice)

    fault_at = time.monotonic()
    await twitch.close_session(session, code, "fault injected")
    await recovers(h, alice, f"WebSocket closed {code} (twitchio does not reconnect)", fault_at, within=5.0)
    assert h.bot(alice) is not bot  # a fresh bot: twitchio's own socket stayed closed
    assert logs.matching(r"alice: connection to Twitch closed.*restarting in")


# -- 5. revocations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["authorization_revoked", "user_removed"])
async def test_revocation_logs_that_user_out_and_leaves_others_alone(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, logs: LogWatcher, reason: str
) -> None:
    h = await start_supervisor()
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    await h.start_user(alice)
    await h.start_user(bob)
    bob_bot = h.bot(bob)

    await twitch.revoke(await twitch.wait_for_subscription(user_id=alice.id), reason)
    await h.supervisor.wait_for_status(alice.id, "needs-login")
    tokens = await h.stored_tokens(alice)
    assert tokens.status == "needs-login"
    assert reason in (tokens.status_reason or "")
    await twitch.wait_until(lambda: not twitch.sessions(user_id=alice.id), what="alice's bot stopping")
    assert len(logs.matching(r"alice needs login: .*users add alice")) == 1

    await h.change(bob, "red")
    assert h.bot(bob) is bob_bot
    assert alice.id not in h.supervisor.bots


async def test_revocation_chat_user_banned_drops_only_that_channel(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, logs: LogWatcher
) -> None:
    h = await start_supervisor()
    alice, partner, bob = twitch.add_user("alice"), twitch.add_user("partner"), twitch.add_user("bob")
    await h.start_user(alice, alice, partner)
    await h.start_user(bob)
    bot = h.bot(alice)

    banned = await twitch.wait_for_subscription(user_id=alice.id, broadcaster_id=partner.id)
    fault_at = time.monotonic()
    await twitch.revoke(banned, "chat_user_banned")
    await logs.wait_for(r"alice: banned in #partner", timeout=5)
    assert list(bot.live_channels) == [alice.id]

    # The own channel keeps working, on the same bot and socket.
    put = await h.change(alice, "red")
    record_recovery("revocation chat_user_banned (other channel)", put.time - fault_at)
    assert h.bot(alice) is bot
    # Saving that change queued behind saving the ban (one connection, a FIFO lock): both are written.
    await logs.wait_for(r"alice: colour changed to red")
    account = await h.cli.get("alice")
    assert account is not None
    assert [c.channel_id for c in account.channels if c.banned_at is not None] == [partner.id]
    assert [c.channel_id for c in account.live_channels] == [alice.id]
    # An unrelated change from the CLI must not restart the bot because of the ban.
    await h.cli.set_colors("alice", hex_policy="never")
    await h.supervisor.settled()
    await h.change(alice, "blue")
    assert h.bot(alice) is bot
    assert not logs.matching(r"alice: .*restarting")
    await h.change(bob, "blue")


# -- 6. 401 on the colour PUT, refresh ----------------------------------------------------------------


async def test_401_on_colour_put_refreshes_saves_the_new_pair_and_retries_once(
    twitch: FakeTwitch, start_supervisor: StartSupervisor
) -> None:
    h = await start_supervisor()
    alice = twitch.add_user("alice")
    await h.start_user(alice)
    bot = h.bot(alice)
    old_pair = (alice.access_token, alice.refresh_token)

    fault_at = time.monotonic()
    twitch.expire_access_token(alice)
    put = await h.change(alice, "red")
    record_recovery("401 on colour PUT (refresh)", put.time - fault_at)

    assert [(p.color, p.status) for p in twitch.color_puts if p.time >= fault_at] == [
        ("red", 401),
        ("red", 204),
    ]
    assert refreshes(twitch) == 1
    assert (alice.access_token, alice.refresh_token) != old_pair
    stored = await h.stored_tokens(alice)
    assert (stored.access_token, stored.refresh_token) == (alice.access_token, alice.refresh_token)
    await h.supervisor.settled()
    await h.change(alice, "blue")  # the new pair keeps working, without another refresh or a restart
    assert refreshes(twitch) == 1
    assert h.bot(alice) is bot


async def test_401_with_refresh_rejected_means_needs_login_without_a_loop(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, logs: LogWatcher
) -> None:
    h = await start_supervisor()
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    await h.start_user(alice)
    await h.start_user(bob)

    twitch.revoke_tokens(alice)
    await h.say(alice, "ccc red")
    await h.supervisor.wait_for_status(alice.id, "needs-login")
    assert (await h.stored_tokens(alice)).status == "needs-login"
    await h.say(alice, "ccc blue")  # nobody reads alice's chat any more
    await h.change(bob, "coral")  # ...while bob carries on; by now a loop would have shown
    await h.supervisor.settled()
    assert refreshes(twitch) == 1
    assert [(p.color, p.status) for p in twitch.color_puts if p.user_id == alice.id] == [("red", 401)]
    assert len(logs.matching(r"alice needs login")) == 1
    assert not logs.matching(r"alice: .*restarting")


async def test_process_killed_right_after_a_refresh_starts_again_with_the_stored_pair(
    twitch: FakeTwitch, runner: Runner
) -> None:
    alice = twitch.add_user("alice")
    await runner.import_user(alice)
    first = await runner.start()
    subscription = await twitch.wait_for_subscription(user_id=alice.id, timeout=PROCESS_TIMEOUT)
    old_pair = (alice.access_token, alice.refresh_token)

    twitch.expire_access_token(alice)
    sent = time.monotonic()
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="ccc red")
    await twitch.wait_until(
        lambda: (
            (alice.access_token, alice.refresh_token) != old_pair
            and any(p.color == "red" and p.status == 204 and p.time >= sent for p in twitch.color_puts)
        ),
        timeout=10,
        what="the pair rotated and the retried PUT landed",
    )
    first.process.kill()  # SIGKILL: no shutdown code runs
    await first.process.wait()
    killed_at = time.monotonic()

    again = await runner.start()
    old_session = subscription.session_id
    await twitch.wait_until(
        lambda: any(s.session_id != old_session for s in twitch.subscriptions(user_id=alice.id)),
        timeout=PROCESS_TIMEOUT,
        what="alice subscribed by the new process",
    )
    since = time.monotonic()
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="ccc blue")
    put = await wait_put(twitch, alice, "blue", since=since, timeout=10)
    record_recovery("process SIGKILLed after a refresh", put.time - killed_at, "SIGKILL -> PUT (new process)")
    assert refreshes(twitch) == 1  # the stored pair was the live one: no second refresh needed
    assert await again.terminate() == 0
    assert "needs login" not in again.log
    for token in (*old_pair, alice.access_token, alice.refresh_token):
        assert token not in first.log + again.log


# -- 7. 429 -----------------------------------------------------------------------------------------


async def test_429_with_ratelimit_reset_retries_once_at_reset_with_the_newest_colour(
    twitch: FakeTwitch, start_supervisor: StartSupervisor
) -> None:
    h = await start_supervisor()
    alice = twitch.add_user("alice")
    await h.start_user(alice)

    fault_wall, fault_at = time.time(), time.monotonic()
    reset = int(fault_wall) + 2
    twitch.fail_helix(path="chat/color", status=429, headers={"Ratelimit-Reset": str(reset)}, user=alice)
    await h.say(alice, "ccc red")
    await wait_put(twitch, alice, "red", since=fault_at, status=429)
    await h.say(alice, "ccc blue")  # while the retry waits for the reset: blue is now the newest
    put = await wait_put(twitch, alice, "blue", since=fault_at, timeout=5)
    record_recovery("429 with Ratelimit-Reset", put.time - fault_at)

    reset_at = fault_at + (reset - fault_wall)  # the reset time on the monotonic clock
    assert put.time >= reset_at - 0.05  # not before Twitch said
    await h.change(alice, "coral")
    assert [(p.color, p.status) for p in twitch.color_puts if p.time >= fault_at] == [
        ("red", 429),
        ("blue", 204),  # exactly one retry, of the newest colour; red never again
        ("coral", 204),
    ]


# -- 8. 5xx storm -----------------------------------------------------------------------------------


def most_requests(policy: RetryPolicy, seconds: float) -> int:
    """The most colour requests one user can make during ``seconds`` of failures under ``policy``.

    The first request, then one after each retry delay; a delay is at least half its nominal value
    (the jitter's floor), and a newer message never adds a request while one waits to be retried.
    """
    requests, elapsed = 1, 0.0
    while True:
        shortest = 0.5 * min(policy.cap, policy.first * 2 ** (requests - 1))
        if elapsed + shortest > seconds:
            return requests
        elapsed += shortest
        requests += 1


async def test_5xx_storm_bounded_requests_per_user_breaker_and_changes_resume(
    twitch: FakeTwitch, start_supervisor: StartSupervisor
) -> None:
    policy = RetryPolicy(first=0.1, cap=0.8, request_timeout=2.0)
    h = await start_supervisor(retry=policy)
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    await h.start_user(alice)
    await h.start_user(bob)
    colors = ["red", "blue", "green", "coral", "chocolate", "firebrick", "hot_pink", "sea_green"]

    twitch.fail_helix(path="chat/color", status=500, count=100_000, user=alice)  # alice's Helix is down
    storm_start = time.monotonic()
    sent = {"alice": 0, "bob": 0}
    last = ""
    async with asyncio.timeout(15):
        while len(puts_of(twitch, alice, since=storm_start, status=500)) < 6:  # her retries grew a while
            last = colors[sent["alice"] % len(colors)]
            await h.say(alice, f"ccc {last}")
            await h.say(alice, "and some chat")
            sent["alice"] += 2
            bob_color = colors[(sent["bob"] + 3) % len(colors)]
            await h.change(bob, bob_color)  # bob's changes land at once, all through her storm
            sent["bob"] += 1
    await h.say(alice, f"ccc {last}")
    storm_end = time.monotonic()
    twitch.heal_helix()

    during = [p for p in twitch.color_puts if p.user_id == alice.id and storm_start <= p.time <= storm_end]
    bound = most_requests(policy, storm_end - storm_start)
    assert len(during) <= bound, (len(during), bound)
    assert sent["alice"] > 2 * bound  # the bound is far below one request per message
    assert len(puts_of(twitch, bob, since=storm_start)) == sent["bob"]  # bob: one change per message

    put = await wait_put(twitch, alice, last, since=storm_end, timeout=policy.cap + 5)
    record_recovery("5xx storm on Helix (one user)", put.time - storm_end, "storm ended -> PUT landed")
    await h.change(alice, "blue_violet")
    assert puts_of(twitch, alice, since=storm_end) == [last, "blue_violet"]  # the last colour won


# -- 9. slow Helix and timeouts -----------------------------------------------------------------------


async def test_slow_helix_and_timeouts_no_task_pileup_bounded_memory_change_lands(
    twitch: FakeTwitch, start_supervisor: StartSupervisor
) -> None:
    policy = RetryPolicy(first=0.2, cap=0.4, request_timeout=0.3)
    h = await start_supervisor(retry=policy)
    alice = twitch.add_user("alice")
    await h.start_user(alice)
    await h.change(alice, "red")
    bot = h.bot(alice)

    gc.collect()
    tasks_before = len(asyncio.all_tasks())
    tracemalloc.start()
    try:
        memory_before = tracemalloc.get_traced_memory()[0]
        twitch.helix_delay = 2.0  # every Helix answer takes 2 s; the client gives up after 0.3 s
        slow_at = time.monotonic()
        for i in range(100):
            await h.say(alice, f"burst message {i} " + "x" * 200)
        # Requests time out and are retried: Twitch (the fake) is still answering earlier ones.
        await twitch.wait_until(lambda: twitch.helix_in_flight >= 3, what="three slow requests at once")
        command = asyncio.ensure_future(bot.wait_for("colorchanger_command", timeout=10))
        for i in range(100):
            await h.say(alice, f"second burst {i} " + "x" * 200)
        await h.say(alice, "ccc coral")
        await command  # both bursts have reached the component
        tasks_during = len(asyncio.all_tasks())
        # Bounded: the one change worker, and the fake's handlers of the requests the retry policy
        # allowed within the 2 s delay (each lives that long). A pile-up is a task per message (200).
        assert tasks_during - tasks_before <= 2 + most_requests(policy, 2.0), tasks_during - tasks_before

        twitch.helix_delay = 0.0
        fast_at = time.monotonic()
        put = await wait_put(twitch, alice, "coral", since=fast_at, timeout=policy.cap + 5)
        record_recovery("slow Helix / timeouts (Helix fast again)", put.time - fast_at, "Helix fast -> PUT")
        await twitch.wait_until(lambda: twitch.helix_in_flight == 0, what="slow requests finished")
        changer = await h.bot(alice).get_component("ColorChanger").changer("alice")  # type: ignore[union-attr]
        await changer.wait_idle()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - memory_before
    finally:
        tracemalloc.stop()
    assert grown < 2 * 1024 * 1024, grown  # 100 messages of 200+ bytes must not be kept around
    assert len(asyncio.all_tasks()) - tasks_before <= 1
    # Requests while slow: bounded by the retry policy, not by the 101 messages.
    slow = [p for p in twitch.color_puts if p.user_id == alice.id and slow_at <= p.time < fast_at]
    assert len(slow) <= most_requests(policy, fast_at - slow_at)
    await h.change(alice, "blue")  # the final state is the newest message's colour
    assert alice.color == "#0000FF"


# -- 10. the database locked or read-only ---------------------------------------------------------------


async def alice_with_a_saved_change(
    twitch: FakeTwitch, h: Harness, logs: LogWatcher
) -> tuple[FakeUser, UserBot]:
    """Alice running with one change saved: the state a database fault is then measured against."""
    alice = twitch.add_user("alice")
    await h.start_user(alice)
    bot = h.bot(alice)
    await h.change(alice, "red")
    await logs.wait_for(r"alice: colour changed to red")
    return alice, bot


async def test_database_locked_by_another_process_clear_error_no_crash_loop_changes_go_on(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, logs: LogWatcher
) -> None:
    h = await start_supervisor()
    alice, bot = await alice_with_a_saved_change(twitch, h, logs)
    before = (await h.cli.get("alice")).state  # type: ignore[union-attr]

    locker = sqlite3.connect(h.database, isolation_level=None, timeout=0)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        locked_at = time.monotonic()
        put = await h.change(alice, "coral")  # the PUT does not wait for the database
        record_recovery("database locked (change while locked)", put.time - locked_at)
        await logs.wait_for(r"alice: could not save colour state: database .* is locked", timeout=10)
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    unlocked_at = time.monotonic()
    await h.change(alice, "blue")
    await logs.wait_for(r"alice: colour changed to blue")
    record_recovery("database locked (writes resume)", time.monotonic() - unlocked_at, "unlocked -> saved")
    after = (await h.cli.get("alice")).state  # type: ignore[union-attr]
    assert h.bot(alice) is bot
    assert h.supervisor.status[alice.id].state == "running"
    assert not logs.matching(r"restarting|Traceback")
    # No partial state: the change whose write failed is absent as a whole, the next one complete.
    assert after.changes == before.changes + 1
    assert after.last_color == "blue"
    assert "coral" not in after.recent_colors
    assert "blue" in after.recent_colors


async def test_database_locked_during_a_token_refresh_keeps_the_new_pair(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, logs: LogWatcher
) -> None:
    h = await start_supervisor()
    alice, bot = await alice_with_a_saved_change(twitch, h, logs)

    locker = sqlite3.connect(h.database, isolation_level=None, timeout=0)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        fault_at = time.monotonic()
        twitch.expire_access_token(alice)
        await h.say(alice, "ccc coral")  # 401, refresh: Twitch has spent the old refresh token now
        await logs.wait_for(r"alice: could not save the refreshed tokens", timeout=10)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    # The only live pair was kept: the change lands with it, and it is saved once the lock is gone.
    put = await wait_put(twitch, alice, "coral", since=fault_at)
    record_recovery("database locked during a token refresh", put.time - fault_at)
    await logs.wait_for(r"alice: refreshed tokens saved", timeout=5)
    stored = await h.stored_tokens(alice)
    assert (stored.access_token, stored.refresh_token) == (alice.access_token, alice.refresh_token)
    assert stored.status == "ok"
    await h.change(alice, "blue")
    assert refreshes(twitch) == 1
    assert h.bot(alice) is bot
    assert not logs.matching(r"needs login|restarting")


async def test_database_read_only_clear_error_no_crash_loop_changes_go_on(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, logs: LogWatcher
) -> None:
    h = await start_supervisor()
    alice, bot = await alice_with_a_saved_change(twitch, h, logs)
    before = (await h.cli.get("alice")).state  # type: ignore[union-attr]

    # Root ignores file modes and a test cannot remount, so the runner's connection is made
    # read-only instead: SQLite then fails every write with SQLITE_READONLY, as on a read-only mount.
    async with h.accounts.store.connection("test: read-only") as conn:
        await conn.execute_fetchall("PRAGMA query_only = ON")
    try:
        readonly_at = time.monotonic()
        put = await h.change(alice, "coral")
        record_recovery("database read-only (change while read-only)", put.time - readonly_at)
        await logs.wait_for(r"alice: could not save colour state: database .* is read-only")
        await h.supervisor.settled()  # the supervisor reads and carries on
        # A bot (re)started while the database is read-only still changes colours.
        session = twitch.sessions(user_id=alice.id)[0]
        await twitch.drop_session(session)
        restarted_at = time.monotonic()
        await h.connected(alice, exclude=[session])
        put = await h.change(alice, "sea_green")
        record_recovery("database read-only (bot restarted meanwhile)", put.time - restarted_at)
        await logs.wait_for(r"alice: could not save colour state: database .* is read-only", count=2)
        bot = h.bot(alice)
    finally:
        async with h.accounts.store.connection("test: writable") as conn:
            await conn.execute_fetchall("PRAGMA query_only = OFF")

    await h.change(alice, "blue")
    await logs.wait_for(r"alice: colour changed to blue")
    after = (await h.cli.get("alice")).state  # type: ignore[union-attr]
    assert h.bot(alice) is bot
    assert h.supervisor.status[alice.id].state == "running"
    assert len(logs.matching(r"restarting")) == 1  # the drop above, and nothing else
    assert not logs.matching(r"Traceback")
    assert after.changes == before.changes + 1
    assert after.last_color == "blue"


# -- hostile input ------------------------------------------------------------------------------------

HOSTILE_CCC = [
    "ccc " + "x" * 10_000,
    "ccc red\x00\x07\x1b[31m\r\nPRIVMSG #alice :hi",
    "ccc \u0440ed",  # Cyrillic er: looks like "red"
    "ccc \uff52\uff45\uff44",  # fullwidth "red"
    "ccc \u202egreen",  # right-to-left override
    "ccc #zzzzzz",
    "ccc red'); DROP TABLE users; --",
    "ccc 1 OR 1=1; SELECT access_token FROM tokens",
]


async def test_hostile_chat_input_is_logged_and_changes_nothing(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, logs: LogWatcher
) -> None:
    h = await start_supervisor()
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    await h.start_user(alice)
    await h.start_user(bob)
    bot = h.bot(alice)
    await h.change(alice, "red")
    since = time.monotonic()

    for text in HOSTILE_CCC:
        await h.say(alice, text)
    refused = await logs.wait_for(r"^alice: .*not a colour", count=len(HOSTILE_CCC))
    assert all(len(line) < 200 and line.isprintable() for line in refused), refused

    # Others typing commands in alice's channel: ignored.
    for text in ("ccc blue", "!ccc blue", "ccd", "cce", "CCC #FF0000"):
        await h.say(bob, text, channel=alice)
    await h.change(alice, "coral")  # sentinel: everything above has been handled
    assert puts_of(twitch, alice, since=since, status=None) == ["coral"]
    assert puts_of(twitch, bob, since=since, status=None) == []
    assert h.bot(alice) is bot
    assert (await h.cli.get("alice")).state.enabled  # type: ignore[union-attr]
    assert not [r for r in logs.records if r.levelno >= logging.ERROR]
    assert len(await h.cli.list()) == 2  # the SQL-looking text stayed text


def notification(type_: str, version: str, event: dict[str, Any]) -> str:
    return json.dumps(
        {
            "metadata": {
                "message_id": "hostile-1",
                "message_type": "notification",
                "message_timestamp": "2024-01-01T00:00:00.000000000Z",
                "subscription_type": type_,
                "subscription_version": version,
            },
            "payload": {
                "subscription": {
                    "id": "not-a-subscription-of-ours",
                    "status": "enabled",
                    "type": type_,
                    "version": version,
                    "cost": 0,
                    "condition": {},
                    "transport": {"method": "websocket", "session_id": "x"},
                    "created_at": "2024-01-01T00:00:00.000000000Z",
                },
                "event": event,
            },
        }
    )


async def test_hostile_eventsub_frames_are_skipped_and_other_users_carry_on(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, logs: LogWatcher
) -> None:
    h = await start_supervisor()
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    session = await h.start_user(alice)
    bob_session = await h.start_user(bob)
    bot, bob_bot = h.bot(alice), h.bot(bob)

    follow = {
        "user_id": bob.id,
        "user_login": bob.login,
        "user_name": bob.display_name,
        "broadcaster_user_id": alice.id,
        "broadcaster_user_login": alice.login,
        "broadcaster_user_name": alice.display_name,
        "followed_at": "2024-01-01T00:00:00.000000000Z",
    }
    for raw in (
        "this is not JSON {",
        json.dumps({"metadata": {"message_type": "session_party"}, "payload": {}}),
        notification("channel.follow", "2", follow),  # a type nobody subscribed to
        notification("channel.made_up_type", "1", {}),
    ):
        await twitch.send_raw(session, raw)
    await h.change(alice, "red")  # the same connection carries on
    assert h.bot(alice) is bot
    assert session in twitch.sessions(user_id=alice.id)
    assert logs.matching(r"Unable to parse JSON")
    assert logs.matching(r"unknown message type")
    assert logs.matching(r"unhandled eventsub event")  # the made-up type; the follow had no listener

    # No metadata at all: twitchio's reader dies on the KeyError; the bot is restarted.
    fault_at = time.monotonic()
    await twitch.send_raw(session, json.dumps({"payload": {"session": {}}}))
    await recovers(
        h,
        alice,
        "EventSub frame without metadata",
        fault_at,
        within=RECOVERS_AFTER_SILENCE,
        exclude=[session],
    )
    assert logs.matching(r"alice: twitchio stopped reading EventSub \(KeyError\)")
    assert h.bot(bob) is bob_bot
    assert bob_session in twitch.sessions(user_id=bob.id)
    await h.change(bob, "blue")
    gc.collect()
    assert not logs.matching(r"never retrieved")


# -- security ---------------------------------------------------------------------------------------------


def issued_tokens(twitch: FakeTwitch, *users: FakeUser) -> set[str]:
    return {
        secret
        for user in users
        for token in twitch.tokens.of_user(user.id)
        for secret in (token.access, token.refresh)
        if secret
    }


async def test_no_token_appears_in_any_log_record_through_faults(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, twitchio's and aiohttp's included
    h = await start_supervisor()
    alice, bob, carol = twitch.add_user("alice"), twitch.add_user("bob"), twitch.add_user("carol")
    twitch.revoke_tokens(carol)  # rejected at start: twitchio's InvalidTokenException holds the token
    await add(h.cli, carol)
    session = await h.start_user(alice)
    await h.start_user(bob)
    await h.supervisor.wait_for_status(carol.id, "needs-login")

    twitch.expire_access_token(alice)  # refresh on the PUT's 401
    await h.change(alice, "red")
    await twitch.drop_session(session)  # a restart with the refreshed pair
    await h.connected(alice, exclude=[session])
    await h.change(alice, "blue")
    twitch.revoke_tokens(bob)  # refresh rejected
    await h.say(bob, "ccc red")
    await h.supervisor.wait_for_status(bob.id, "needs-login")
    twitch.fail_helix(path="chat/color", status=401, count=1, user=alice)  # 401 with a live token
    await h.change(alice, "coral")
    await h.close()

    secrets = issued_tokens(twitch, alice, bob, carol)
    assert len(secrets) >= 8
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts = [formatter.format(record) for record in caplog.records]
    assert len(texts) > 50
    leaks = [(secret, text) for text in texts for secret in secrets if secret in text]
    assert not leaks, leaks[:3]
