"""``colorchanger-runner demo``: the real runner against the built-in simulated Twitch.

Everything production runs is used as is: ``Accounts`` (the storage ``users add`` writes, in a
throwaway directory), the ``Supervisor``, one ``UserBot`` per user with the ``ColorChanger``
component, encrypted token storage, and twitchio talking to ``FakeTwitch`` over real loopback
sockets. Only Twitch is simulated. A short scripted chat is played and every step is checked, so
the demo doubles as a smoke test: it exits 1 naming the first step that did not behave.

Every wait is on an event (a colour PUT reaching the fake, the component's
``event_colorchanger_command``, a supervisor status), never on a sleep. "Nothing happened" is
proven with a barrier: a bare ``ccc`` is answered without changing anything, and chat is handled
in arrival order, so once it is answered and the user's change queue is idle, every earlier
message has had all the effect it will ever have.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import click
from twitchio.eventsub import websockets

from colorchanger_ext import ColorChanger
from colorchanger_ext.colors import NAMED_COLORS, to_hex
from colorchanger_ext.component import CommandOutcome
from colorchanger_ext.settings import ColorSettings
from colorchanger_ext.testing import ColorPut, FakeTwitch, FakeUser
from colorchanger_ext.twitchio_compat import fix_reconnect_tracking, twitchio_endpoints

from .accounts import Accounts
from .logs import SecretRedactor, configure_logging
from .supervisor import Supervisor
from .userbot import UserBot

T = TypeVar("T")

ColorDepth = Literal["truecolor", "256"]

STEP_TIMEOUT = 5.0
"""Seconds any one step may take; on loopback each takes milliseconds."""
STARTUP_TIMEOUT = 10.0
TOTAL_TIMEOUT = 25.0
"""The whole demo, start-up and shutdown included, stays under the promised 30 s."""
SHUTDOWN_TIMEOUT = 8.0
PAUSE = 0.35
"""Seconds between transcript lines, purely for reading along; ``--fast`` skips it."""
BARRIER_WARNING = "ccc needs a colour"
"""What the component logs (as a warning) for the demo's own bare ``ccc`` barriers."""


class DemoFailed(Exception):
    """A step did not behave as scripted; the message says which and how."""


# --- colour in the terminal ----------------------------------------------------------------------


def color_depth(flag: bool | None, *, isatty: bool, env: Mapping[str, str]) -> ColorDepth | None:
    """How to draw swatches: None for plain text.

    ``--color``/``--no-color`` decide when given. Otherwise colour needs a terminal (not a pipe or
    file), no ``NO_COLOR`` (https://no-color.org) and not ``TERM=dumb``. 24-bit colour is used
    when ``COLORTERM`` says the terminal has it, else the nearest of xterm's 256 colours, which
    every colour terminal draws correctly (24-bit escapes garble on those without it).
    """
    if flag is False:
        return None
    if flag is None and (not isatty or env.get("NO_COLOR") or env.get("TERM") == "dumb"):
        return None
    return "truecolor" if env.get("COLORTERM", "").lower() in ("truecolor", "24bit") else "256"


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return int(hex_color[1:3], 16), int(hex_color[3:5], 16), int(hex_color[5:7], 16)


_CUBE = (0, 95, 135, 175, 215, 255)


def xterm_256(red: int, green: int, blue: int) -> int:
    """The nearest xterm-256 palette index (6x6x6 cube or grey ramp) to an RGB colour."""

    def nearest_level(value: int) -> int:
        return min(range(6), key=lambda i: abs(_CUBE[i] - value))

    r, g, b = nearest_level(red), nearest_level(green), nearest_level(blue)
    cube = (_CUBE[r], _CUBE[g], _CUBE[b])
    grey_step = min(23, max(0, round(((red + green + blue) / 3 - 8) / 10)))
    grey = 8 + 10 * grey_step

    def distance(other: tuple[int, int, int]) -> int:
        return sum((a - b) ** 2 for a, b in zip((red, green, blue), other, strict=True))

    if distance((grey, grey, grey)) < distance(cube):
        return 232 + grey_step
    return 16 + 36 * r + 6 * g + b


def swatch(hex_color: str, depth: ColorDepth) -> str:
    """Two cells of background colour, reset after (click.style has no 24-bit colour)."""
    red, green, blue = _rgb(hex_color)
    code = f"48;2;{red};{green};{blue}" if depth == "truecolor" else f"48;5;{xterm_256(red, green, blue)}"
    return f"\x1b[{code}m  \x1b[0m"


# --- the transcript ---------------------------------------------------------------------------------


@dataclass
class Transcript:
    """Writes the demo's lines to stdout, with or without colour swatches."""

    depth: ColorDepth | None
    pause: float

    def echo(self, text: str = "") -> None:
        # color=True: click would strip the swatches whenever stdout is not a terminal, even with --color.
        click.echo(text, color=self.depth is not None or None)

    def color(self, color: str) -> str:
        """``hot_pink (#FF69B4)`` or ``#9146FF``, after a swatch when colour is on."""
        hex_color = to_hex(color)
        text = f"{color} ({hex_color})" if color in NAMED_COLORS else hex_color
        return f"{swatch(hex_color, self.depth)} {text}" if self.depth else text

    async def chat(self, channel: str, chatter: str, text: str, result: str) -> None:
        """One chat line and what came of it."""
        self.echo(f"  #{channel:<6} {chatter + ':':<7} {text:<34} -> {result}")
        await self.breathe()

    async def note(self, text: str) -> None:
        self.echo(f"  {'':<7} {'':<7} {text}")
        await self.breathe()

    async def breathe(self) -> None:
        if self.pause > 0:
            await asyncio.sleep(self.pause)  # readability only: every step already waited for its outcome


# --- the script -----------------------------------------------------------------------------------


@dataclass
class Player:
    """A simulated Twitch account that has the runner changing its colour."""

    user: FakeUser
    about: str
    mode: str = "preset"

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def login(self) -> str:
        return self.user.login


@dataclass
class Demo:
    """Plays the scripted chat against a running Supervisor and checks each step's outcome."""

    fake: FakeTwitch
    supervisor: Supervisor
    accounts: Accounts
    out: Transcript
    alice: Player
    bob: Player
    carol: FakeUser
    messages: int = 0
    barriers: int = 0

    # -- helpers ----------------------------------------------------------------------------------

    async def within(self, what: str, waiting: Awaitable[T], timeout: float = STEP_TIMEOUT) -> T:  # noqa: ASYNC109
        """``waiting``'s result, or DemoFailed naming the step when it takes longer than ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                return await waiting
        except TimeoutError as error:
            detail = f" ({error})" if str(error) else ""
            raise DemoFailed(f"{what}: nothing happened within {timeout:.0f} s{detail}") from None

    def bot(self, player: Player) -> UserBot:
        bot = self.supervisor.bots.get(player.id)
        if bot is None:
            state = self.supervisor.status.get(player.id)
            raise DemoFailed(f"{player.login}'s bot is not running ({state.state if state else 'unknown'})")
        return bot

    def component(self, player: Player) -> ColorChanger:
        component = self.bot(player).get_component("ColorChanger")
        if not isinstance(component, ColorChanger):
            raise DemoFailed(f"{player.login}'s bot has no ColorChanger component")
        return component

    def puts(self, player: Player | None = None) -> list[ColorPut]:
        return [p for p in self.fake.color_puts if player is None or p.user_id == player.id]

    async def send(self, channel: FakeUser, chatter: FakeUser, text: str, *, barrier: bool = False) -> None:
        await self.fake.send_chat_message(broadcaster=channel, chatter=chatter, text=text)
        if barrier:
            self.barriers += 1
        else:
            self.messages += 1

    async def command(self, player: Player, text: str, *, what: str, barrier: bool = False) -> CommandOutcome:
        """``player`` types a chat command; its outcome once the component has acted on it."""
        bot = self.bot(player)
        waiter = asyncio.ensure_future(bot.wait_for("colorchanger_command"))
        try:
            await asyncio.sleep(0)  # let wait_for register before the message can arrive (not a delay)
            await self.send(player.user, player.user, text, barrier=barrier)
            outcome = await self.within(what, waiter)
        finally:
            waiter.cancel()
        if not isinstance(outcome, CommandOutcome) or outcome.user_id != player.id:
            raise DemoFailed(f"{what}: unexpected answer {outcome!r}")
        return outcome

    async def settle(self, player: Player, what: str) -> None:
        """Wait until the player's change queue is empty (nothing in flight, nothing waiting)."""
        changer = await self.component(player).changer(player.login)
        await self.within(what, changer.wait_idle())

    async def barrier(self, player: Player, what: str) -> None:
        """Return once every message sent so far has had all the effect it will have on ``player``."""
        outcome = await self.command(player, "ccc", what=f"{what} (checking with a bare ccc)", barrier=True)
        if outcome.ok:
            raise DemoFailed(f"{what}: a bare ccc was accepted ({outcome.detail})")
        await self.settle(player, what)

    async def new_puts(self, player: Player, before: int, count: int, what: str) -> list[ColorPut]:
        """The ``count`` colour PUTs ``player`` made after the first ``before``, once its queue is idle."""
        await self.within(what, self.fake.wait_for_color_puts(before + count, user_id=player.id))
        await self.settle(player, what)
        new = self.puts(player)[before:]
        if len(new) != count:
            shown = ", ".join(f"{p.color} ({p.status})" for p in new)
            raise DemoFailed(f"{what}: expected {count} colour request(s) to Twitch, got {len(new)}: {shown}")
        return new

    def check_twitch_has(self, player: Player, color: str, what: str) -> None:
        if player.user.color != to_hex(color):
            raise DemoFailed(
                f"{what}: Twitch shows {player.login}'s colour as {player.user.color or 'unset'}, not {color}"
            )

    # -- steps ------------------------------------------------------------------------------------

    async def own_message(self, player: Player, text: str) -> None:
        """The player chats in their channel: exactly one new colour, unlike the one before."""
        what = f"{player.login}: {text!r}"
        before = self.puts(player)
        previous = before[-1].color if before else None
        await self.send(player.user, player.user, text)
        (put,) = await self.new_puts(player, len(before), 1, what)
        if put.status != 204:
            raise DemoFailed(f"{what}: Twitch answered {put.status} to colour {put.color}")
        if put.color == previous:
            raise DemoFailed(f"{what}: the new colour {put.color} is the same as the previous one")
        if player.mode == "hex" and put.color in NAMED_COLORS:
            raise DemoFailed(f"{what}: {player.login} is in hex mode but got the named colour {put.color}")
        self.check_twitch_has(player, put.color, what)
        await self.out.chat(player.login, player.login, text, self.out.color(put.color))

    async def no_change(self, player: Player, chatter: FakeUser, text: str, why: str) -> None:
        """``chatter`` says ``text`` in ``player``'s channel and ``player``'s colour stays as it is."""
        what = f"{chatter.login} in #{player.login}: {text!r}"
        before, color = len(self.puts()), player.user.color
        await self.send(player.user, chatter, text)
        await self.barrier(player, what)
        if len(self.puts()) != before or player.user.color != color:
            changed = ", ".join(f"{p.color} for {p.user_id}" for p in self.puts()[before:])
            raise DemoFailed(f"{what}: expected no colour change ({why}), got {changed}")
        await self.out.chat(player.login, chatter.login, text, f"(no change: {why})")

    async def toggle(self, player: Player, word: str, enabled: bool) -> None:
        """``cce``/``ccd``: answered, saved in the database, and no colour change of its own."""
        what = f"{player.login}: {word!r}"
        before = len(self.puts())
        outcome = await self.command(player, word, what=what)
        if not outcome.ok:
            raise DemoFailed(f"{what}: refused ({outcome.detail})")
        account = await self.accounts.get(player.id)
        if account is None or account.state.enabled is not enabled:
            raise DemoFailed(
                f"{what}: the database does not say colour changes are {'on' if enabled else 'off'}"
            )
        await self.settle(player, what)
        if len(self.puts()) != before:
            raise DemoFailed(f"{what}: the command also changed the colour")
        await self.out.chat(player.login, player.login, word, f"({outcome.detail})")

    async def set_color(self, player: Player, text: str, expected: Sequence[tuple[str, int]]) -> None:
        """``ccc <colour>``: answered, and exactly the ``expected`` (colour, status) requests reach Twitch."""
        what = f"{player.login}: {text!r}"
        before = len(self.puts(player))
        outcome = await self.command(player, text, what=what)
        if not outcome.ok:
            raise DemoFailed(f"{what}: refused ({outcome.detail})")
        new = await self.new_puts(player, before, len(expected), what)
        got = [(p.color, p.status) for p in new]
        if got != list(expected):
            raise DemoFailed(f"{what}: expected requests {list(expected)}, got {got}")
        self.check_twitch_has(player, new[-1].color, what)
        await self.out.chat(player.login, player.login, text, self.out.color(new[-1].color))

    async def hex_without_turbo(self, player: Player, hex_color: str, fallback: str) -> None:
        """A hex ``ccc`` from an account without Turbo or Prime: refused, then the nearest named colour."""
        await self.set_color(player, f"ccc {hex_color.lower()}", [(hex_color, 400), (fallback, 204)])
        account = await self.accounts.get(player.id)
        if account is None or account.state.hex_refused_at is None:
            raise DemoFailed(f"{player.login}: the refusal of hex colours was not remembered")
        await self.out.note(
            f"Twitch refused {hex_color} (400: hex needs Turbo or Prime); {fallback}, the nearest"
        )
        await self.out.note(
            f"named colour, was set instead. {player.login}'s bot remembers: hex is tried again in a day."
        )

    async def reconnect(self, player: Player) -> None:
        """Twitch moves the player's EventSub session to a new socket; the bot follows without a restart."""
        what = f"session_reconnect for {player.login}"
        bot = self.bot(player)
        sessions = self.fake.sessions(user_id=player.id)
        if len(sessions) != 1:
            raise DemoFailed(f"{what}: expected one EventSub session, found {len(sessions)}")
        (session,) = sessions
        subscriptions = {s.id for s in session.subscriptions}
        await self.fake.send_reconnect(session)
        await self.within(
            what,
            self.fake.wait_until(
                lambda: not session.reconnecting and session.open_sockets == 1,
                timeout=STEP_TIMEOUT,
                what="the bot's move to the reconnect URL and the old socket closed",
            ),
        )
        if session.closed or {s.id for s in session.subscriptions} != subscriptions:
            raise DemoFailed(f"{what}: the session or its chat subscription was lost")
        status = self.supervisor.status.get(player.id)
        if self.supervisor.bots.get(player.id) is not bot or status is None or status.state != "running":
            raise DemoFailed(f"{what}: the bot was restarted instead of following the move")
        await self.out.note(
            f"Twitch: session_reconnect for {player.login} -> followed to the new socket, same session,"
        )
        await self.out.note("chat subscription kept, no restart.")

    # -- the whole script -------------------------------------------------------------------------

    async def play(self) -> None:
        alice, bob, carol = self.alice, self.bob, self.carol
        await self.own_message(alice, "hello chat!")
        await self.own_message(bob, "hi! hex colours for me")
        await self.no_change(alice, carol, "nice colour, alice", "carol is not alice")
        await self.toggle(alice, "ccd", enabled=False)
        await self.no_change(alice, alice.user, "brb, keeping this one", "alice typed ccd")
        await self.toggle(alice, "cce", enabled=True)
        await self.own_message(alice, "back, colourful again")
        await self.set_color(alice, "ccc hot pink", [("hot_pink", 204)])
        await self.own_message(alice, "pink was nice")
        await self.hex_without_turbo(alice, "#FF00FF", "hot_pink")
        await self.set_color(bob, "ccc #9146FF", [("#9146FF", 204)])
        await self.reconnect(alice)
        await self.own_message(alice, "still here after the move")


# --- running it -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _reconnect_tracking_fixed() -> Iterator[None]:
    """``fix_reconnect_tracking`` as ``run`` applies it, undone afterwards: the demo may run in-process."""
    saved = websockets.Websocket._cleanup
    fix_reconnect_tracking()
    try:
        yield
    finally:
        websockets.Websocket._cleanup = saved  # type: ignore[method-assign]  # restoring twitchio as found


class _DropBarrierWarnings(logging.Filter):
    """The component warns about every bare ``ccc``; the demo sends those on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "colorchanger_ext.component" and BARRIER_WARNING in record.getMessage())


@contextlib.contextmanager
def _demo_logging(verbose: bool) -> Iterator[SecretRedactor]:
    """The runner's logging, quiet (WARNING+) unless verbose, to stderr; the old setup restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    for handler in saved_handlers:  # set aside, not closed: configure_logging closes what it finds
        root.removeHandler(handler)
    redactor = configure_logging(level="INFO" if verbose else "WARNING", stream=sys.stderr)
    if not verbose:
        for handler in root.handlers:
            handler.addFilter(_DropBarrierWarnings())
    try:
        yield redactor
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
            handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


@dataclass(frozen=True)
class Summary:
    messages: int
    barriers: int
    changes: int
    refused: int
    helix: Counter[str]
    oauth: int
    final: list[tuple[Player, str]]
    seconds: float


async def _add(accounts: Accounts, player: Player) -> None:
    """Store the simulated user exactly as ``users add`` does (encrypted tokens, one channel: their own)."""
    user = player.user
    await accounts.add_user(
        user_id=user.id,
        login=user.login,
        access_token=user.access_token,
        refresh_token=user.refresh_token,
        scopes=user.scopes,
        expires_at=None,
        channels=[(user.id, user.login)],
        mode=player.mode,
        hex_policy="auto",
    )


@contextlib.asynccontextmanager
async def _running(supervisor: Supervisor) -> AsyncIterator[asyncio.Task[None]]:
    """The supervisor running as ``run`` runs it; on the way out it is stopped within its grace time."""
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop), name="demo:supervisor")
    try:
        yield task
    finally:
        stop.set()
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                await asyncio.gather(task, return_exceptions=True)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise DemoFailed(f"the runner did not stop within {SHUTDOWN_TIMEOUT:.0f} s") from None


async def _race(script: Awaitable[None], supervisor: asyncio.Task[None]) -> None:
    """Run ``script`` while the supervisor runs; the supervisor ending first is a failure."""
    playing = asyncio.ensure_future(script)
    try:
        await asyncio.wait([playing, supervisor], return_when=asyncio.FIRST_COMPLETED)
        if not playing.done():
            error = supervisor.exception() if not supervisor.cancelled() else None
            raise DemoFailed(f"the runner stopped by itself{f': {error!r}' if error else ''}")
        playing.result()
    finally:
        playing.cancel()
        await asyncio.gather(playing, return_exceptions=True)


async def _start(demo: Demo) -> None:
    """Wait until the supervisor has both bots subscribed to chat, as ``run`` would."""
    for player in (demo.alice, demo.bob):
        await demo.within(
            f"starting {player.login}'s bot",
            demo.supervisor.wait_for_status(player.id, "running", timeout=STARTUP_TIMEOUT),
            timeout=STARTUP_TIMEOUT,
        )
    demo.out.echo("Runner started: both bots connected to EventSub and reading chat.")
    demo.out.echo()


async def _final_colours(demo: Demo) -> list[tuple[Player, str]]:
    """Each user's last colour, once the database and Twitch are checked to agree on it and the count."""
    final, stored = [], 0
    for player in (demo.alice, demo.bob):
        account = await demo.accounts.get(player.id)
        last = account.state.last_color if account else None
        if account is None or last is None or to_hex(last) != player.user.color:
            raise DemoFailed(f"{player.login}: the database says {last}, Twitch says {player.user.color}")
        final.append((player, last))
        stored += account.state.changes
    made = sum(1 for p in demo.puts() if p.status == 204)
    if stored != made:
        raise DemoFailed(f"Twitch made {made} colour changes but the database counts {stored}")
    return final


def _introduce(out: Transcript, fake: FakeTwitch, players: Sequence[Player], viewer: FakeUser) -> None:
    out.echo(f"colorchanger demo: simulated Twitch on {fake.base_url.removeprefix('http://')}")
    out.echo("(nothing leaves this machine; a throwaway database in a temporary directory)")
    out.echo()
    for player in players:
        out.echo(f"  {player.login:<6} {player.about}; mode {player.mode}; reads chat in #{player.login}")
    out.echo(f"  {viewer.login:<6} a viewer in #alice (no bot)")
    out.echo()


async def play_demo(out: Transcript, redactor: SecretRedactor) -> Summary:
    """Start everything, play the script, stop everything, and say what happened."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="colorchanger-demo-") as tmp:
        database = Path(tmp) / "colorchanger.sqlite3"
        async with FakeTwitch() as fake:
            alice = Player(fake.add_user("alice", turbo=False), "no Turbo or Prime: named colours only")
            bob = Player(fake.add_user("bob", turbo=True), "Turbo: any hex colour", mode="hex")
            carol = fake.add_user("carol")  # a viewer: no bot, just chat
            _introduce(out, fake, (alice, bob), carol)
            # ``run``'s own setup: the reconnect fix (applied by the caller) and twitchio aimed at "Twitch".
            with twitchio_endpoints(fake.helix_url, fake.id_url, fake.eventsub_url):
                accounts = await Accounts.open(database, env={})  # env={}: no COLORCHANGER_SECRET_KEY
                try:
                    for player in (alice, bob):
                        await _add(accounts, player)
                    supervisor = Supervisor(
                        accounts,
                        client_id=fake.client_id,
                        client_secret=None,
                        colors=ColorSettings(database=database),
                        redactor=redactor,
                    )
                    demo = Demo(fake, supervisor, accounts, out, alice, bob, carol)
                    async with _running(supervisor) as running:
                        await _race(_start(demo), running)
                        await _race(demo.play(), running)
                    # The supervisor has stopped: every bot must have closed its EventSub socket.
                    await demo.within(
                        "closing the bots' connections",
                        fake.wait_until(lambda: not fake.sessions(), what="every EventSub socket closed"),
                    )
                    final = await _final_colours(demo)
                finally:
                    await accounts.close()
            return Summary(
                messages=demo.messages,
                barriers=demo.barriers,
                changes=sum(1 for p in fake.color_puts if p.status == 204),
                refused=sum(1 for p in fake.color_puts if p.status != 204),
                helix=Counter(
                    f"{r.method} {r.path.removeprefix('/helix/')}"
                    for r in fake.requests
                    if r.path.startswith("/helix/")
                ),
                oauth=sum(1 for r in fake.requests if r.path.startswith("/oauth2/")),
                final=final,
                seconds=time.monotonic() - started,
            )


def print_summary(out: Transcript, summary: Summary) -> None:
    out.echo()
    out.echo("Runner stopped: every bot closed its connection.")
    out.echo()
    out.echo("Summary")
    out.echo(
        f"  chat messages sent:  {summary.messages} "
        f"(plus {summary.barriers} bare `ccc` the demo sent to prove nothing else happened)"
    )
    out.echo(f"  colour changes made: {summary.changes} ({summary.refused} request refused by Twitch)")
    detail = ", ".join(f"{count} {request}" for request, count in sorted(summary.helix.items()))
    out.echo(f"  Helix requests:      {sum(summary.helix.values())} ({detail})")
    out.echo(f"  OAuth requests:      {summary.oauth} (token checks)")
    for player, color in summary.final:
        out.echo(f"  {player.login + ':':<20} final colour {out.color(color)}")
    out.echo(f"Every step behaved as scripted ({summary.seconds:.1f} s).")


@contextlib.contextmanager
def _cancelled_by_sigterm() -> Iterator[None]:
    """SIGTERM cancels the demo, so it still closes everything and removes its directory on the way out.

    (asyncio.run does the same for Ctrl-C.) Signal handlers need the main thread; elsewhere, as
    under a test runner's worker thread, there is nothing to install.
    """
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    installed = False
    if task is not None:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
            installed = True
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)


def run_demo(*, fast: bool, color: bool | None, verbose: bool) -> None:
    """The ``demo`` command: exit 0 when every step behaved, else a ClickException (exit 1)."""
    depth = color_depth(color, isatty=sys.stdout.isatty(), env=os.environ)
    out = Transcript(depth, 0.0 if fast else PAUSE)

    async def main() -> Summary:
        with _cancelled_by_sigterm():
            deadline = asyncio.timeout(TOTAL_TIMEOUT)
            try:
                async with deadline:
                    return await play_demo(out, redactor)
            except TimeoutError:
                if deadline.expired():
                    raise DemoFailed(f"the demo did not finish within {TOTAL_TIMEOUT:.0f} s") from None
                raise

    with _demo_logging(verbose) as redactor, _reconnect_tracking_fixed():
        try:
            summary = asyncio.run(main())
        except DemoFailed as failure:
            raise click.ClickException(f"demo failed: {failure}") from None
        except asyncio.CancelledError:  # SIGTERM; Ctrl-C arrives as KeyboardInterrupt (click: "Aborted!")
            raise click.ClickException(
                "demo stopped by SIGTERM (everything it started is cleaned up)"
            ) from None
        except Exception as error:  # a crash in the code under test: say where, in one line
            if verbose:
                traceback.print_exc()
            frame = traceback.extract_tb(error.__traceback__)[-1]
            raise click.ClickException(
                redactor.redact(
                    f"demo failed: unexpected {type(error).__name__}: {error} "
                    f"(at {frame.filename}:{frame.lineno}; --verbose shows the traceback)"
                )
            ) from None
    print_summary(out, summary)
