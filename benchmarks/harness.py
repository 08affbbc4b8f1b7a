"""The pieces every benchmark shares: the fake Twitch with users, the runner process, /proc readers.

Only the project's own dependencies and the standard library are used, so the benchmark runs in
any venv the project is installed in (a fresh one included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bot_runner.accounts import Accounts
from colorchanger_ext.testing import ColorPut, FakeSubscription, FakeTwitch, FakeUser

T = TypeVar("T")

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SCOPES = ("user:read:chat", "user:manage:chat_color")
PROCESS_START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
FLOOR_CLIENT = Path(__file__).resolve().parent / "floor_client.py"


class BenchmarkError(RuntimeError):
    """A benchmark could not be carried out (the runner died, an expected event never came)."""


# --- /proc ------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole process (every thread, dead ones included), in seconds.

    From ``/proc/<pid>/stat`` fields 14 and 15, in clock ticks (10 ms on Linux).
    """
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 is fields[0]
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` (resident now) and ``VmHWM`` (peak resident) from ``/proc/<pid>/status``, in KiB."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            found[key] = int(value.split()[0])
    return found


def rss_mb(pid: int) -> float:
    """Resident memory now, in MB (10^6 bytes)."""
    return memory_kib(pid)["VmRSS"] * 1024 / 1e6


# --- the runner process -----------------------------------------------------------------------------


@dataclass
class RunnerProcess:
    """One ``python -m bot_runner --config CFG run`` process, its log going to a file."""

    command: list[str]
    cwd: Path
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0  # time.monotonic() just before the exec
    _log: Any = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._log,
        )

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def guard(self, awaitable: Awaitable[T], what: str) -> T:
        """Await ``awaitable``, failing at once (with the log) if the runner exits meanwhile."""
        assert self.process is not None
        task = asyncio.ensure_future(awaitable)
        exited = asyncio.ensure_future(self.process.wait())
        try:
            await asyncio.wait([task, exited], return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
            await asyncio.gather(exited, return_exceptions=True)
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise BenchmarkError(
                f"the runner exited ({self.process.returncode}) while waiting for {what}:\n{self.log_tail()}"
            )
        try:
            return task.result()
        except TimeoutError as error:
            raise BenchmarkError(f"{error} (waiting for {what}); runner log:\n{self.log_tail()}") from None

    async def stop(self) -> int:
        """SIGTERM and the exit status; killed if it does not stop in time."""
        process = self.process
        if process is None:
            return 0
        try:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(STOP_TIMEOUT):
                        await process.wait()
                except TimeoutError:
                    process.kill()
                    await process.wait()
            assert process.returncode is not None
            return process.returncode
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


# --- the fake Twitch with users ---------------------------------------------------------------------


@dataclass
class Bench:
    """A fake Twitch in this process, N users on it, and a database + config the runner can use.

    ``sent`` maps a chat message id to ``time.monotonic()`` taken right before the fake hands the
    notification frame to its WebSocket (the hook wraps ``EventSub.send``; what remains before the
    bytes leave is the fake's JSON encoding of the frame and one socket write).
    """

    workdir: Path
    user_count: int
    with_database: bool = True  # the reference client needs none
    fake: FakeTwitch = field(init=False)
    users: list[FakeUser] = field(default_factory=list, init=False)
    sent: dict[str, float] = field(default_factory=dict, init=False)
    database: Path = field(init=False)
    config: Path = field(init=False)
    runs: int = field(default=0, init=False)

    async def open(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.fake = FakeTwitch()
        await self.fake.start()
        self._hook_notifications()
        self.users = [self.fake.add_user(f"bench{index:05d}", turbo=True) for index in range(self.user_count)]
        self.database = self.workdir / "colorchanger.sqlite3"
        self.config = self.workdir / "colorchanger.yaml"
        if not self.with_database:
            return
        expires_at = time.time() + self.fake.tokens.lifetime
        async with await Accounts.open(self.database) as accounts:
            for user in self.users:
                await accounts.add_user(
                    user_id=user.id,
                    login=user.login,
                    access_token=user.access_token,
                    refresh_token=user.refresh_token,
                    scopes=SCOPES,
                    expires_at=expires_at,
                    channels=[(user.id, user.login)],
                )
        self.config.write_text(
            "twitch:\n"
            f"  client_id: {self.fake.client_id}\n"
            "  endpoints:\n"
            f"    helix: {self.fake.helix_url}\n"
            f"    oauth: {self.fake.id_url}\n"
            f"    eventsub: {self.fake.eventsub_url}\n"
            f"database: {json.dumps(str(self.database))}\n",
            encoding="utf-8",
        )

    async def close(self) -> None:
        await self.fake.close()

    def _hook_notifications(self) -> None:
        send = self.fake.eventsub.send
        sent = self.sent

        async def timed_send(sub: FakeSubscription, message: dict[str, Any]) -> None:
            if message["metadata"]["message_type"] == "notification":
                message_id = message["payload"]["event"].get("message_id")
                if message_id:
                    sent.setdefault(message_id, time.monotonic())
            await send(sub, message)

        self.fake.eventsub.send = timed_send  # type: ignore[method-assign]

    def runner(self, *, command: Sequence[str] | None = None) -> RunnerProcess:
        """A runner process for this bench (not started); ``command`` replaces ``python -m bot_runner``."""
        base = list(command) if command is not None else [sys.executable, "-m", "bot_runner"]
        return self._process([*base, "--config", str(self.config), "run"])

    def floor_client(self) -> RunnerProcess:
        """The reference client (``floor_client.py``) for this bench's users, in place of the runner."""
        users = self.workdir / "floor-users.json"
        users.write_text(
            json.dumps(
                {
                    "client_id": self.fake.client_id,
                    "helix": self.fake.helix_url,
                    "eventsub": self.fake.eventsub_url,
                    "users": [{"id": user.id, "token": user.access_token} for user in self.users],
                }
            ),
            encoding="utf-8",
        )
        return self._process([sys.executable, str(FLOOR_CLIENT), str(users)])

    def _process(self, command: list[str]) -> RunnerProcess:
        self.runs += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLORCHANGER_")}
        return RunnerProcess(
            command=command,
            cwd=self.workdir,
            env=env,
            log_path=self.workdir / f"runner-{self.runs}.log",
        )

    # waiting on the fake (bounded; every wait re-checks when the fake's state changes)

    def subscribed_count(self) -> int:
        return len(self.fake.eventsub.subscriptions)

    async def wait_all_subscribed(self, runner: RunnerProcess, timeout: float) -> float:  # noqa: ASYNC109
        """Seconds from the runner's exec until every user has its chat subscription."""
        await runner.guard(
            self.fake.wait_until(
                lambda: self.subscribed_count() >= self.user_count,
                timeout=timeout,
                what=f"{self.user_count} chat subscriptions",
            ),
            "every user to subscribe",
        )
        return time.monotonic() - runner.started_at

    async def wait_all_gone(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """After a runner stopped: every session of it has ended at the fake."""
        await self.fake.wait_until(
            lambda: not self.fake.eventsub.subscriptions and not self.fake.eventsub.sessions,
            timeout=timeout,
            what="every EventSub session closed",
        )

    def puts_since(self, since: float, user_id: str | None = None) -> list[ColorPut]:
        return [
            put
            for put in self.fake.color_puts
            if put.time >= since and (user_id is None or put.user_id == user_id)
        ]

    async def wait_for_puts(
        self,
        runner: RunnerProcess,
        count: int,
        *,
        since: float,
        timeout: float,  # noqa: ASYNC109
        user_id: str | None = None,
        predicate: Callable[[ColorPut], bool] | None = None,
    ) -> list[ColorPut]:
        def check() -> list[ColorPut] | None:
            puts = self.puts_since(since, user_id)
            if predicate is not None:
                puts = [put for put in puts if predicate(put)]
            return puts if len(puts) >= count else None

        await runner.guard(
            self.fake.wait_until(lambda: check() is not None, timeout=timeout, what=f"{count} colour PUTs"),
            f"{count} colour PUTs",
        )
        result = check()
        assert result is not None
        return result

    async def say(self, user: FakeUser, text: str) -> str:
        """The user types ``text`` in their own channel; the message id."""
        return await self.fake.send_chat_message(broadcaster=user, chatter=user, text=text)


# --- statistics -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linearly interpolated between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Spread:
    """A figure over several runs: the median, and the smallest and largest run."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        clean = [v for v in values if v == v]  # drop NaN
        if not clean:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        return cls(percentile(clean, 50), min(clean), max(clean), len(clean))

    def format(self, digits: int = 2, unit: str = "") -> str:
        if self.runs == 0:
            return "n/a"
        text = f"{self.median:.{digits}f}{unit}"
        if self.runs > 1:
            text += f" ({self.low:.{digits}f}-{self.high:.{digits}f})"
        return text
