"""Shared fixtures and harnesses, one copy each; test modules import the classes from here.

Sections:

- the fake Twitch: ``twitch`` (knobs through ``@pytest.mark.fake_twitch(...)``), a plain ``http``
  client, and ``reconnect_fix``;
- host bots: the component in ordinary twitchio 3 bots (``bots``);
- the runner in-process: a ``Supervisor`` plus a second ``Accounts`` as "the CLI"
  (``start_supervisor``, ``harness``; knobs through ``@pytest.mark.supervisor(...)``);
- the runner as a subprocess: ``colorchanger-runner`` run the way a user runs it (``runner``; extra
  config keys through ``@pytest.mark.runner_config(...)``);
- state files: ``db`` and ``store``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import twitchio
import yaml
from twitchio.eventsub import websockets
from twitchio.ext import commands

from bot_runner.accounts import Accounts, StoredTokens
from bot_runner.supervisor import Backoff, Supervisor
from bot_runner.userbot import UserBot
from colorchanger_ext import ColorChanger, ColorSettings, Store
from colorchanger_ext.component import CommandOutcome
from colorchanger_ext.testing import ColorPut, FakeSession, FakeTwitch, FakeUser
from colorchanger_ext.twitchio_compat import fix_reconnect_tracking


def pytest_configure(config: pytest.Config) -> None:
    """Register the knob markers the fixtures below read (pytest warns about unregistered ones)."""
    for line in (
        "fake_twitch(**options): FakeTwitch keyword arguments for the `twitch` fixture",
        "supervisor(**knobs): Supervisor keyword arguments (and `seed` for its rng) for `start_supervisor`",
        "runner_config(**keys): extra top-level keys in the config file of the `runner` fixture",
    ):
        config.addinivalue_line("markers", line)


def marker_options(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    """The keyword arguments of the closest ``name`` marker (test, class, then module), or none."""
    marker = request.node.get_closest_marker(name)
    return dict(marker.kwargs) if marker is not None else {}


# -- the fake Twitch ------------------------------------------------------------------------------------

KEEPALIVE = 0.2
"""The fault suites' keepalive interval (Twitch's is 10 s), so that a 1 s silence limit is safe."""
SILENCE_LIMIT = 1.0
"""The fault suites' silence limit: seconds without a frame before the supervisor restarts a bot."""
fast_keepalives = pytest.mark.fake_twitch(keepalive_interval=KEEPALIVE, subscribe_deadline=5.0)
"""For the fault suites: keepalives every 0.2 s; 4003 for an unused connection only after 5 s."""


@pytest.fixture
async def twitch(request: pytest.FixtureRequest) -> AsyncIterator[FakeTwitch]:
    """A fake Twitch on 127.0.0.1 with twitchio's endpoints pointed at it."""
    async with FakeTwitch(**marker_options(request, "fake_twitch")) as fake:
        with fake.patch_twitchio():
            yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp client, for talking to the fake (or the runner) the way twitchio would."""
    async with aiohttp.ClientSession() as session:
        yield session


def refreshes(twitch: FakeTwitch) -> int:
    """How many refresh_token grants the fake has been asked for."""
    return sum(
        1
        for request in twitch.requests
        if request.path == "/oauth2/token" and request.query.get("grant_type") == ["refresh_token"]
    )


def tokens_of(*users: FakeUser) -> list[str]:
    """Every token the users hold now: none of them may ever show up in output or logs."""
    return [token for user in users for token in (user.access_token, user.refresh_token)]


@contextlib.contextmanager
def websocket_cleanup(patch: Callable[[], None]) -> Iterator[None]:
    """Apply ``patch`` to twitchio's ``Websocket._cleanup`` and restore what the test found."""
    saved = websockets.Websocket._cleanup
    patch()
    try:
        yield
    finally:
        websockets.Websocket._cleanup = saved  # type: ignore[method-assign]  # restoring what the test found


@pytest.fixture
def reconnect_fix() -> Iterator[None]:
    """The runner applies fix_reconnect_tracking() when ``run`` starts; in-process tests do it here."""
    with websocket_cleanup(fix_reconnect_tracking):
        yield


# -- host bots: the component in ordinary twitchio bots ----------------------------------------------


class HostBot(commands.Bot):
    """An ordinary twitchio 3 chat bot that adds the component, the way a bot author would."""

    def __init__(
        self,
        twitch: FakeTwitch,
        user: FakeUser,
        channels: Sequence[FakeUser],
        *,
        add_component: Callable[[HostBot], Awaitable[None]],
        owner: FakeUser | None = None,
        prefix: str = "!",
    ) -> None:
        super().__init__(
            client_id=twitch.client_id,
            bot_id=user.id,
            owner_id=owner.id if owner else None,
            prefix=prefix,
        )
        self.account = user
        self.channels = list(channels)
        self._install_component = add_component

    async def setup_hook(self) -> None:
        await self.add_token(self.account.access_token, self.account.refresh_token)
        await self._install_component(self)
        for channel in self.channels:
            subscription = twitchio.eventsub.ChatMessageSubscription(
                broadcaster_user_id=channel.id, user_id=self.account.id
            )
            await self.subscribe_websocket(payload=subscription, token_for=self.account.id)

    @property
    def color_changer(self) -> ColorChanger:
        component = self.get_component("ColorChanger")
        assert isinstance(component, ColorChanger)
        return component

    async def command(
        self, twitch: FakeTwitch, text: str, *, chatter: FakeUser | None = None
    ) -> CommandOutcome:
        """Type a chat command and wait until the component has acted on it."""
        waiter = asyncio.ensure_future(self.wait_for("colorchanger_command", timeout=5))
        await asyncio.sleep(0)  # let wait_for register before the message can arrive
        await twitch.send_chat_message(
            broadcaster=self.channels[0], chatter=chatter or self.account, text=text
        )
        outcome: CommandOutcome = await waiter
        return outcome


@dataclass
class Bots:
    """Starts host bots against the fake Twitch and always stops them."""

    twitch: FakeTwitch
    database: Path
    running: list[tuple[HostBot, asyncio.Task[None]]] = field(default_factory=list)

    def create(
        self,
        user: FakeUser,
        channels: Sequence[FakeUser] | None = None,
        *,
        component: Callable[[HostBot], ColorChanger] | None = None,
        store: Store | None = None,
        settings: ColorSettings | None = None,
        load_module: bool = False,
        **options: Any,
    ) -> HostBot:
        """A host bot, not started yet; by default it adds ColorChanger(bot, store, settings)."""
        settings = settings or ColorSettings(database=self.database)

        async def add_component(bot: HostBot) -> None:
            if load_module:
                await bot.load_module("colorchanger_ext")
            elif component is not None:
                await bot.add_component(component(bot))
            else:
                await bot.add_component(ColorChanger(bot, store=store, settings=settings))

        return HostBot(self.twitch, user, list(channels or [user]), add_component=add_component, **options)

    async def run(self, bot: HostBot) -> HostBot:
        """Start ``bot`` and wait until it is subscribed to chat in each of its channels."""
        user = bot.account
        task = asyncio.create_task(
            bot.start(token=user.access_token, with_adapter=False, load_tokens=False, save_tokens=False)
        )
        self.running.append((bot, task))

        async def subscribed() -> None:
            for channel in bot.channels:
                await self.twitch.wait_for_subscription(user_id=user.id, broadcaster_id=channel.id)

        ready = asyncio.ensure_future(subscribed())
        await asyncio.wait([ready, task], return_when=asyncio.FIRST_COMPLETED)
        if task.done():  # the bot died while starting: show why
            ready.cancel()
            await asyncio.gather(ready, return_exceptions=True)
            task.result()
            raise AssertionError("the bot stopped before it subscribed")
        ready.result()
        return bot

    async def start(
        self, user: FakeUser, channels: Sequence[FakeUser] | None = None, **options: Any
    ) -> HostBot:
        return await self.run(self.create(user, channels, **options))

    async def stop(self, bot: HostBot) -> None:
        for entry in [e for e in self.running if e[0] is bot]:
            self.running.remove(entry)
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError):
                await entry[1]


@pytest.fixture
async def bots(twitch: FakeTwitch, tmp_path: Path) -> AsyncIterator[Bots]:
    running = Bots(twitch, tmp_path / "colorchanger.sqlite3")
    try:
        yield running
    finally:
        for bot, _ in list(running.running):
            await running.stop(bot)


# -- the runner in-process: a Supervisor, and a second Accounts as "the CLI" ---------------------------
#
# A second ``Accounts`` on the same file stands in for the CLI running in another process: it is
# another SQLite connection, which is what the supervisor watches for.


async def add(accounts: Accounts, user: FakeUser, *channels: FakeUser) -> None:
    """Store ``user`` as ``users add`` does, reading ``channels`` (by default their own)."""
    await accounts.add_user(
        user_id=user.id,
        login=user.login,
        access_token=user.access_token,
        refresh_token=user.refresh_token,
        scopes=user.scopes,
        expires_at=None,
        channels=[(c.id, c.login) for c in channels or (user,)],
    )


async def wait_put(
    twitch: FakeTwitch,
    user: FakeUser,
    color: str,
    *,
    since: float,
    status: int = 204,
    timeout: float = 5.0,  # noqa: ASYNC109
) -> ColorPut:
    """The first colour PUT of ``color`` for ``user`` with ``status`` that arrived after ``since``."""

    def found() -> ColorPut | None:
        return next(
            (
                p
                for p in twitch.color_puts
                if p.user_id == user.id and p.color == color and p.status == status and p.time >= since
            ),
            None,
        )

    await twitch.wait_until(
        lambda: found() is not None, timeout=timeout, what=f"PUT {color} ({status}) for {user.login}"
    )
    put = found()
    assert put is not None
    return put


def puts_of(twitch: FakeTwitch, user: FakeUser, *, since: float, status: int | None = 204) -> list[str]:
    """The colours PUT for ``user`` since ``since`` (with ``status``; None: whatever the answer)."""
    return [
        p.color
        for p in twitch.color_puts
        if p.user_id == user.id and p.time >= since and status in (None, p.status)
    ]


@dataclass
class Harness:
    """A Supervisor running in-process against the fake, and the CLI's view of its database."""

    twitch: FakeTwitch
    supervisor: Supervisor
    accounts: Accounts
    cli: Accounts
    database: Path
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def begin(self, serve: Serve | None = None) -> None:
        """Run the supervisor until ``stop`` is set; ``serve`` wraps the run (e.g. in the health app)."""
        body = serve(self) if serve is not None else self.supervisor.run(self.stop)
        self.task = asyncio.create_task(body, name="supervisor")

    async def close(self) -> None:
        """Stop the supervisor and close both connections; calling it again does nothing more."""
        self.stop.set()
        if self.task is not None:
            async with asyncio.timeout(10):
                await self.task
        await self.cli.close()
        await self.accounts.close()

    def bot(self, user: FakeUser) -> UserBot:
        return self.supervisor.bots[user.id]

    async def stored_tokens(self, user: FakeUser) -> StoredTokens:
        """The user's tokens (and their status) as the CLI reads them from the database."""
        account = await self.cli.get(user.login)
        assert account is not None
        assert account.tokens is not None
        return account.tokens

    async def start_user(self, user: FakeUser, *channels: FakeUser) -> FakeSession:
        """Add the user from "the CLI" and wait until their bot reads chat in every channel."""
        await add(self.cli, user, *channels)
        for channel in channels or (user,):
            await self.twitch.wait_for_subscription(user_id=user.id, broadcaster_id=channel.id)
        return await self.connected(user)

    async def connected(
        self,
        user: FakeUser,
        *,
        exclude: Iterable[FakeSession] = (),
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> FakeSession:
        """The live session reading the user's chat (not one of ``exclude``), once the bot runs."""
        old = list(exclude)

        def live() -> FakeSession | None:
            for sub in self.twitch.subscriptions(user_id=user.id):
                session = self.twitch.eventsub.sessions.get(sub.session_id)
                if session is not None and not session.silenced and session not in old:
                    return session
            return None

        await self.twitch.wait_until(lambda: live() is not None, timeout=timeout, what=f"{user.login} online")
        await self.supervisor.wait_for_status(user.id, "running", timeout=timeout)
        session = live()
        assert session is not None
        return session

    async def say(self, user: FakeUser, text: str, *, channel: FakeUser | None = None) -> None:
        await self.twitch.send_chat_message(broadcaster=channel or user, chatter=user, text=text)

    async def change(
        self,
        user: FakeUser,
        color: str,
        *,
        channel: FakeUser | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> ColorPut:
        """Send ``ccc <color>`` as the user and wait for its PUT to land."""
        since = time.monotonic()
        await self.say(user, f"ccc {color}", channel=channel)
        return await wait_put(self.twitch, user, color, since=since, timeout=timeout)


Serve = Callable[[Harness], Coroutine[Any, Any, None]]
"""Runs ``harness.supervisor.run(harness.stop)`` inside something else, such as the health app."""
StartSupervisor = Callable[..., Awaitable[Harness]]
"""``await start_supervisor(serve=None, **knobs)``: a running Harness, stopped after the test."""


@pytest.fixture
async def start_supervisor(
    twitch: FakeTwitch, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[StartSupervisor]:
    """Start Supervisors on tmp_path's database: quick polls and restarts unless a marker or call says."""
    database = tmp_path / "colorchanger.sqlite3"
    made: list[Harness] = []

    async def start(*, serve: Serve | None = None, **options: Any) -> Harness:
        knobs: dict[str, Any] = {
            "poll_interval": 0.05,
            "backoff": Backoff(first=0.05, cap=0.2, healthy_after=60),
            "seed": 1,
            **marker_options(request, "supervisor"),
            **options,
        }
        seed = knobs.pop("seed")
        knobs.setdefault("rng", random.Random(seed))
        accounts = await Accounts.open(database)
        cli = await Accounts.open(database)
        supervisor = Supervisor(
            accounts,
            client_id=twitch.client_id,
            client_secret=None,
            colors=ColorSettings(database=database),
            **knobs,
        )
        harness = Harness(twitch, supervisor, accounts, cli, database)
        made.append(harness)
        harness.begin(serve)
        return harness

    try:
        yield start
    finally:
        for harness in made:
            await harness.close()


@pytest.fixture
async def harness(start_supervisor: StartSupervisor) -> Harness:
    """One Supervisor, already running, with the module's knobs."""
    return await start_supervisor()


# -- the runner as a subprocess: `colorchanger-runner` as a user runs it --------------------------------

PROCESS_TIMEOUT = 30
"""Python start-up plus importing twitchio takes a second or two on a small machine."""


def write_runner_config(path: Path, twitch: FakeTwitch, **keys: Any) -> Path:
    """A config file for the runner pointing at the fake's loopback URLs, plus top-level ``keys``."""
    path.write_text(
        f"""
twitch:
  client_id: {twitch.client_id}
  endpoints:
    helix: {twitch.helix_url}
    oauth: {twitch.id_url}
    eventsub: {twitch.eventsub_url}
database: state/colorchanger.sqlite3
"""
        + (yaml.safe_dump(keys) if keys else ""),
        encoding="utf-8",
    )
    return path


TOKEN_FILES = Path(tempfile.mkdtemp(prefix="colorchanger-test-tokens-"))
"""Where import_args leaves token files (a user imports from a file, never the command line)."""
atexit.register(shutil.rmtree, TOKEN_FILES, ignore_errors=True)


def token_file(user: FakeUser) -> Path:
    """A file holding the user's current pair, as ``users add --tokens-from FILE`` reads it."""
    descriptor, name = tempfile.mkstemp(dir=TOKEN_FILES, prefix=f"{user.login}-")
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(f"{user.access_token}\n{user.refresh_token}\n")
    return Path(name)


def import_args(user: FakeUser, *channels: str) -> list[str]:
    """``users add`` with the user's current tokens (no device code flow), reading ``channels``."""
    options = [arg for channel in channels for arg in ("--channel", channel)]
    return ["users", "add", user.login, "--tokens-from", str(token_file(user)), *options]


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class RunningRunner:
    """A `colorchanger-runner run` process whose log lines the test can wait for."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    _new_line: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    def start_reading(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._new_line.set()
        self._new_line.set()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_log(self, pattern: str, *, timeout: float = 10) -> str:  # noqa: ASYNC109
        regex = re.compile(pattern)
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line):
                        return line
                seen = len(self.lines)
                if self.process.returncode is not None and self._reader is not None and self._reader.done():
                    raise AssertionError(
                        f"runner exited ({self.process.returncode}) without {pattern!r}:\n{self.log}"
                    )
                self._new_line.clear()
                await self._new_line.wait()

    async def terminate(self, signum: int = signal.SIGTERM) -> int:
        """SIGTERM (or ``signum``), then the exit status; it must come within Twitch-friendly 5 s."""
        self.process.send_signal(signum)
        async with asyncio.timeout(5):
            returncode = await self.process.wait()
        if self._reader is not None:
            await self._reader
        return returncode

    async def kill(self) -> None:
        """SIGKILL if it still runs, and read its log to the end: nothing outlives the test."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await self._reader


@dataclass
class Runner:
    """Runs the CLI the way a user does: a fresh Python process with its own config file."""

    config: Path
    env: dict[str, str]
    running: list[RunningRunner] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "bot_runner", "--config", str(self.config), *args]

    async def spawn(self, *args: str, stdout: int) -> asyncio.subprocess.Process:
        """The CLI with ``args`` in a fresh process: no stdin, stderr piped to the test."""
        return await asyncio.create_subprocess_exec(
            *self.command(*args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )

    async def cli(self, *args: str) -> Finished:
        process = await self.spawn(*args, stdout=asyncio.subprocess.PIPE)
        async with asyncio.timeout(PROCESS_TIMEOUT):
            stdout, stderr = await process.communicate()
        assert process.returncode is not None
        return Finished(process.returncode, stdout.decode(), stderr.decode())

    async def ok(self, *args: str) -> str:
        finished = await self.cli(*args)
        assert finished.returncode == 0, f"{args} failed:\n{finished.stdout}\n{finished.stderr}"
        return finished.stdout

    async def import_user(self, user: FakeUser, *channels: FakeUser) -> None:
        await self.ok(*import_args(user, *(channel.login for channel in channels)))

    async def start(self, *options: str) -> RunningRunner:
        """`run` with ``options``, its log read as it comes; killed after the test if still running."""
        process = await self.spawn("run", *options, stdout=asyncio.subprocess.DEVNULL)
        runner = RunningRunner(process)
        runner.start_reading()
        self.running.append(runner)
        return runner


@pytest.fixture
async def runner(twitch: FakeTwitch, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Runner]:
    """The CLI in subprocesses: config aimed at the fake, no COLORCHANGER_* from outside, unbuffered."""
    config = write_runner_config(
        tmp_path / "colorchanger.yaml", twitch, **marker_options(request, "runner_config")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLORCHANGER_")}
    env["PYTHONUNBUFFERED"] = "1"
    made = Runner(config, env)
    try:
        yield made
    finally:
        for running in made.running:
            await running.kill()


# -- state files ----------------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where the store's SQLite file goes; nothing is created until something opens it."""
    return tmp_path / "state.sqlite3"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[Store]:
    """A Store opened (and migrated) on ``db``, closed after the test."""
    async with await Store.open(db) as opened:
        yield opened
