"""A time-compressed soak: 20 users, faults at random, thousands of own messages, nothing leaks.

The runner's ``Supervisor`` runs in-process against the fake Twitch (keepalives every 0.2 s, a
1 s silence limit). Each round injects faults drawn with a fixed seed from the list the fault
tests cover, has every user chat (plain messages, ``ccc``, hostile text, others' commands), heals
what needs healing, and ends at a quiet point where each user's last message, ``ccc <colour>``,
must be the colour Twitch ended with, put exactly once after it was sent. At the end the
asyncio tasks, file descriptors and sockets are back where they started (small stated slack)
and memory grew less than a stated bound.

The default run starts rounds for 20 s; ``SOAK_SECONDS=600`` soaks for ten minutes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from bot_runner.supervisor import Backoff
from colorchanger_ext.changer import RetryPolicy
from colorchanger_ext.component import ColorChanger
from colorchanger_ext.testing import NAMED_COLORS, FakeSession, FakeTwitch, FakeUser

from .conftest import SILENCE_LIMIT, Harness, StartSupervisor, add, fast_keepalives, wait_put
from .test_faults import HOSTILE_CCC

SEED = 20_240_611
USERS = 20
MESSAGES_PER_USER_PER_ROUND = 10
FAULTS_PER_ROUND = 5
SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "20"))

SESSION_FAULTS = [
    "drop",
    "close 4000",
    "close 4002",
    "close 4005",
    "close 4006",
    "close 4007",
    "close 4001",
    "close 4003",
    "silence",
    "frame without metadata",
]
OTHER_FAULTS = [
    "session_reconnect",
    "non-JSON frame",
    "401 (expired token)",
    "revoked, then users add",
    "429",
    "5xx burst",
]
GLOBAL_FAULTS = ["slow Helix", "Helix timeouts", "database busy"]
COLORS = sorted(NAMED_COLORS)

pytestmark = [fast_keepalives, pytest.mark.usefixtures("reconnect_fix")]

TASK_SLACK = 2
"""The fake's server may still be finishing a just-closed keep-alive connection's handler."""
FD_SLACK = 2
"""The same connection's socket, closed by the peer a moment before the server notices."""
RSS_GROWTH_LIMIT = 32 * 1024 * 1024
"""Memory after the warm-up round vs the end. What may still grow: each bot's bounded set of seen
message ids (up to 128 each) and allocator arenas Python keeps. The test keeps no log records and
trims the fake's request log every round, so a leak per message (thousands) or per restart
(hundreds) would show."""


class TextLog(logging.Handler):
    """Keeps each record's formatted text only: holding records would keep what their args point
    at (twitchio logs its socket objects, and through them whole bots) alive, and skew the memory."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, int, str]] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, record.levelno, self.format(record)))


def fds() -> list[str]:
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            found.append(os.readlink(f"/proc/self/fd/{name}"))
        except OSError:  # the listing's own fd is gone by now
            continue
    return found


def resources() -> tuple[int, int, int]:
    """(asyncio tasks, open file descriptors, of which sockets)."""
    open_fds = fds()
    return len(asyncio.all_tasks()), len(open_fds), sum(1 for fd in open_fds if fd.startswith("socket:"))


def append_to_report(text: str) -> None:
    """Add to $RECOVERY_REPORT (a file, or a directory to put recovery.md in), as test_faults does."""
    report = os.environ.get("RECOVERY_REPORT")
    if report:
        path = Path(report) / "recovery.md" if Path(report).is_dir() else Path(report)
        with path.open("a", encoding="utf-8") as out:
            out.write(text + "\n")


def rss() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Soak:
    def __init__(self, h: Harness, users: list[FakeUser], rng: random.Random) -> None:
        self.h = h
        self.twitch = h.twitch
        self.users = users
        self.rng = rng
        self.faults: Counter[str] = Counter()
        self.messages = 0
        self.rounds = 0
        self.puts = 0

    async def round(self) -> None:
        twitch, rng = self.twitch, self.rng
        self.puts += len(twitch.color_puts)
        twitch.color_puts.clear()  # each round looks only at its own PUTs; the record would only grow
        twitch.requests.clear()
        killed: dict[str, list[FakeSession]] = {}
        relogin: list[FakeUser] = []
        locker: sqlite3.Connection | None = None
        waits_for_drain = False

        victims = rng.sample(self.users, FAULTS_PER_ROUND)
        for user in victims:
            fault = rng.choice(SESSION_FAULTS + OTHER_FAULTS + GLOBAL_FAULTS)
            self.faults[fault] += 1
            sessions = twitch.sessions(user_id=user.id)
            session = sessions[0] if sessions else None
            if fault in SESSION_FAULTS and session is not None:
                killed.setdefault(user.id, []).append(session)
                if fault == "drop":
                    await twitch.drop_session(session)
                elif fault.startswith("close"):
                    await twitch.close_session(session, int(fault.split()[1]), "soak")
                elif fault == "silence":
                    twitch.silence(session)
                else:
                    await twitch.send_raw(session, '{"payload": {}}')
            elif fault == "session_reconnect" and session is not None and not session.reconnecting:
                await twitch.send_reconnect(session)
            elif fault == "non-JSON frame" and session is not None:
                await twitch.send_raw(session, "}{ not json")
            elif fault == "401 (expired token)":
                twitch.expire_access_token(user)
            elif fault == "revoked, then users add":
                subs = twitch.subscriptions(user_id=user.id)
                if subs and user not in relogin:
                    twitch.revoke_tokens(user)
                    await twitch.revoke(subs[0], "authorization_revoked")
                    relogin.append(user)
            elif fault == "429":
                reset = str(int(time.time()) + 1)
                twitch.fail_helix(
                    path="chat/color", status=429, headers={"Ratelimit-Reset": reset}, user=user
                )
            elif fault == "5xx burst":
                twitch.fail_helix(path="chat/color", status=rng.choice([500, 502, 503]), count=3, user=user)
            elif fault == "slow Helix":
                twitch.helix_delay = 0.3  # slower than a user types, under the request timeout
            elif fault == "Helix timeouts":
                twitch.helix_delay = 1.5  # over the 1 s request timeout
                waits_for_drain = True
            elif fault == "database busy" and locker is None:
                locker = sqlite3.connect(self.h.database, isolation_level=None, timeout=0)
                locker.execute("BEGIN EXCLUSIVE")  # held for the chat below, well inside the busy timeout

        for _ in range(MESSAGES_PER_USER_PER_ROUND):
            for user in rng.sample(self.users, len(self.users)):
                await self.chat(user)

        twitch.helix_delay = 0.0
        if locker is not None:
            locker.execute("ROLLBACK")
            locker.close()
        if waits_for_drain:  # a request Twitch answers after the client gave up may still land
            await twitch.wait_until(lambda: twitch.helix_in_flight == 0, timeout=5, what="slow requests done")
        for user in relogin:
            await self.h.supervisor.wait_for_status(user.id, "needs-login", timeout=10)
            twitch.tokens.issue(user, sorted(user.scopes))  # the user logs in again: `users add`
            await add(self.h.cli, user)
        for user in self.users:
            await self.h.connected(user, exclude=killed.get(user.id, ()), timeout=15)
        await self.quiet_point()
        self.rounds += 1

    async def chat(self, user: FakeUser) -> None:
        roll = self.rng.random()
        if roll < 0.70:
            text = f"message {self.messages} from {user.login}"
        elif roll < 0.85:
            text = f"ccc {self.rng.choice(COLORS)}"
        elif roll < 0.92:
            text = self.rng.choice(HOSTILE_CCC)[:300]
        else:  # someone else typing a command in this user's channel: ignored
            other = self.rng.choice([u for u in self.users if u is not user])
            await self.twitch.send_chat_message(broadcaster=user, chatter=other, text="ccc red")
            return
        await self.twitch.send_chat_message(broadcaster=user, chatter=user, text=text)
        self.messages += 1

    async def quiet_point(self) -> None:
        """Each user's last message sets a known colour: it must land, once, and be the last PUT."""
        finals = {user.id: self.rng.choice(COLORS) for user in self.users}
        sent = time.monotonic()
        for user in self.users:
            await self.twitch.send_chat_message(broadcaster=user, chatter=user, text=f"ccc {finals[user.id]}")
            self.messages += 1
        await asyncio.gather(
            *(wait_put(self.twitch, u, finals[u.id], since=sent, timeout=15) for u in self.users)
        )
        for user in self.users:
            component = self.h.bot(user).get_component("ColorChanger")
            assert isinstance(component, ColorChanger)
            await (await component.changer(user.login)).wait_idle()
        for user in self.users:
            after = [p for p in self.twitch.color_puts if p.user_id == user.id and p.time >= sent]
            assert after, user.login
            assert (after[-1].color, after[-1].status) == (finals[user.id], 204), (user.login, after)
            assert [p.color for p in after if p.status == 204].count(finals[user.id]) == 1, (
                user.login,
                after,
            )


async def test_soak_20_users_random_faults_thousands_of_messages_nothing_leaks(
    twitch: FakeTwitch, start_supervisor: StartSupervisor, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = TextLog()
    root = logging.getLogger()
    saved_level = root.level
    root.setLevel(logging.WARNING)
    root.addHandler(watcher)
    rng = random.Random(SEED)
    gc.collect()
    before = resources()
    started = time.monotonic()
    h = await start_supervisor(
        silence_limit=SILENCE_LIMIT,
        backoff=Backoff(first=0.2, cap=2.0, healthy_after=1.0),
        retry=RetryPolicy(first=0.1, cap=0.5, request_timeout=1.0),
        seed=SEED + 1,
    )
    try:
        users = [twitch.add_user(f"soaker{i:02d}") for i in range(USERS)]
        for user in users:
            await add(h.cli, user)
        for user in users:
            await h.connected(user, timeout=15)
        soak = Soak(h, users, rng)

        await soak.round()  # warm-up: every code path has run once before memory is measured
        gc.collect()
        rss_warm = rss()
        deadline = time.monotonic() + SOAK_SECONDS
        while time.monotonic() < deadline:
            await soak.round()
            caplog.clear()  # pytest's own capture keeps records (and what they point at) otherwise
        gc.collect()
        rss_grown = rss() - rss_warm
    finally:
        await h.close()
        root.removeHandler(watcher)
        root.setLevel(saved_level)
    await twitch.wait_until(lambda: not twitch.eventsub.sessions, what="every session closed")

    async def settled() -> tuple[int, int, int]:
        """Wait (bounded) until the leftovers of the last closed connections are gone."""
        async with asyncio.timeout(5):
            while True:
                gc.collect()
                now = resources()
                if now[0] <= before[0] + TASK_SLACK and now[1] <= before[1] + FD_SLACK:
                    return now
                await asyncio.sleep(0.05)

    after = await settled()
    elapsed = time.monotonic() - started
    restarts = sum(1 for _, _, text in watcher.lines if "restarting in" in text)
    summary = (
        f"soak: {soak.rounds} rounds, {soak.messages} own messages, "
        f"{soak.puts + len(twitch.color_puts)} colour PUTs, "
        f"{restarts} bot restarts, "
        f"{sum(soak.faults.values())} faults {dict(sorted(soak.faults.items()))}, {elapsed:.1f} s; "
        f"tasks/fds/sockets {before} -> {after}; RSS +{rss_grown / 2**20:.1f} MiB after warm-up"
    )
    print(summary)
    append_to_report(f"## tests/test_soak.py\n\n{summary}\n")

    assert soak.messages >= 1000, summary
    assert restarts >= 1, summary  # the faults did bite
    assert after[0] <= before[0] + TASK_SLACK, summary
    assert after[1] <= before[1] + FD_SLACK, summary
    assert after[2] <= before[2] + FD_SLACK, summary
    assert rss_grown < RSS_GROWTH_LIMIT, summary
    unhandled = [
        text
        for name, level, text in watcher.lines
        if (name == "asyncio" and level >= logging.ERROR)
        or any(sign in text for sign in ("Traceback", "never retrieved", "Task was destroyed", "Unclosed"))
    ]
    assert not unhandled, unhandled[:3]
