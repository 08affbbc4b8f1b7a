"""The twitchio Component: reads the account's own chat messages and drives its Changer."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twitchio.ext import commands

from . import colors
from .changer import Changer, ExactColor, NextColor, RetryPolicy
from .commands import ChatCommand, Enable, SetColor, SetMode, parse_command
from .dedup import RecentIds
from .observer import ChangeObserver, NullObserver
from .ratelimit import RateLimits
from .settings import COLOR_MODES, ColorSettings
from .store import NoPaletteError, Store, StoreError
from .twitchio_compat import command_prefixes, isolated_component_class

if TYPE_CHECKING:
    import twitchio

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What a chat command did; dispatched as ``event_colorchanger_command`` so a host bot can answer."""

    user_id: str
    command: ChatCommand
    ok: bool
    detail: str


class ColorChanger(commands.Component, name="ColorChanger"):
    """Changes the bot account's chat colour after each message it sends.

    Give it a ``store`` to share one database between several bots (it is then left open on
    teardown); without one it opens ``settings.database`` itself. Give it ``rate_limits`` whose
    trace is on the bot's HTTP session to retry a 429 exactly at Twitch's reset time (otherwise
    it waits a minute, by when Twitch's bucket is always full again). Give it an ``observer``
    (a ``ChangeObserver``) to count messages, changes and Helix errors, e.g. for metrics.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> ColorChanger:
        # Component state lives on the class in twitchio: see twitchio_compat.
        return super().__new__(isolated_component_class(cls))

    def __init__(
        self,
        bot: commands.Bot,
        *,
        store: Store | None = None,
        settings: ColorSettings | None = None,
        rng: random.Random | None = None,
        rate_limits: RateLimits | None = None,
        retry: RetryPolicy | None = None,
        observer: ChangeObserver | None = None,
    ) -> None:
        self.bot = bot
        self.settings = settings or ColorSettings()
        self._store = store
        self._owns_store = store is None
        self._rng = rng or random.Random()
        self._rate_limits = rate_limits
        self._retry = retry
        self._observer: ChangeObserver = observer or NullObserver()
        self._seen = RecentIds(self.settings.seen_messages)
        self._changer: Changer | None = None
        self._changer_lock = asyncio.Lock()
        self._in_order = asyncio.Lock()  # one event at a time, in delivery order

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("ColorChanger is not loaded yet")
        return self._store

    async def component_load(self) -> None:
        if self._store is None:
            self._store = await Store.open(self.settings.database)
        logger.info("colour changer loaded for user id %s (database %s)", self.bot.bot_id, self._store.path)

    async def component_teardown(self) -> None:
        if self._changer is not None:
            await self._changer.close()
        if self._owns_store and self._store is not None:
            await self._store.close()
            self._store = None

    async def changer(self, login: str) -> Changer:
        """The bot account's Changer, created with its stored state on first use."""
        if self._changer is not None:
            return self._changer
        async with self._changer_lock:  # messages arriving while the state loads must share one Changer
            if self._changer is not None:
                return self._changer
            try:
                state = await self.store.ensure_user(
                    self.bot.bot_id,
                    login,
                    mode=self.settings.mode,
                    hex_policy=self.settings.hex_policy,
                    readability=self.settings.readability,
                    rainbow_step=self.settings.rainbow_step,
                )
            except StoreError as error:
                # ensure_user always takes the write lock: on a locked or read-only database a bot
                # (re)started then changed no colour at all. The PUT needs no write: use the stored row.
                stored = await self.store.get_user(self.bot.bot_id)
                if stored is None:
                    raise
                logger.error("%s: %s; going on with the stored settings", login, error)
                state = stored
            self._changer = Changer(
                state,
                store=self.store,
                put_color=self._put_color,
                settings=self.settings,
                rng=self._rng,
                rate_limits=self._rate_limits,
                retry=self._retry,
                observer=self._observer,
            )
        return self._changer

    async def reload_state(self) -> None:
        """Pick up settings another process wrote to the database (mode, hex policy, on/off)."""
        if self._changer is not None:
            await self._changer.reload()

    async def _put_color(self, color: str) -> None:
        await self.bot.create_partialuser(self.bot.bot_id).update_chatter_color(color)

    @commands.Component.listener("message")  # type: ignore[untyped-decorator]  # twitchio types it as Any
    async def event_message(self, message: twitchio.ChatMessage) -> None:
        received_at = time.monotonic()
        chatter_id = message.chatter.id
        is_self = chatter_id == self.bot.bot_id
        if not is_self and (chatter_id is None or chatter_id != self.bot.owner_id):
            return
        # Shared chat delivers one message once per channel: the source id is the same in each copy.
        if not self._seen.add(message.source_id or message.id):
            return
        if is_self:
            self._observer.message_seen(self.bot.bot_id)
        # twitchio runs each event in a task of its own; without this a message could be checked
        # against `enabled` before an earlier `ccd` was saved. The lock is taken at the first await,
        # so in the order Twitch delivered the messages (asyncio.Lock wakes waiters first come first).
        async with self._in_order:
            await self._handle(message, is_self, chatter_id, received_at)

    async def _handle(
        self, message: twitchio.ChatMessage, is_self: bool, chatter_id: str, received_at: float
    ) -> None:
        command = parse_command(message.text, await command_prefixes(self.bot, message))
        login = (
            (message.chatter.name if is_self else None) or getattr(self.bot.user, "name", None) or chatter_id
        )
        try:
            changer = await self.changer(login)
        except StoreError as error:
            logger.error("cannot read colour state: %s", error)
            return
        if command is not None:
            await self._run_command(changer, command)
        elif is_self and changer.state.enabled:
            changer.request(NextColor(), received_at=received_at)

    async def _run_command(self, changer: Changer, command: ChatCommand) -> CommandOutcome:
        login = changer.state.login
        if isinstance(command, SetColor):
            if not command.argument:
                return self._outcome(
                    changer, command, False, "ccc needs a colour, like 'ccc blue_violet' or 'ccc #9146FF'"
                )
            try:
                color = colors.parse_color(command.argument)
            except colors.ColorError as error:
                return self._outcome(changer, command, False, f"ccc: {error}")
            changer.request(NextColor() if color == colors.RANDOM else ExactColor(color))
            return self._outcome(changer, command, True, f"setting colour to {color}")
        if isinstance(command, SetMode):
            return await self._set_mode(changer, command)
        enabled = isinstance(command, Enable)
        word = "cce" if enabled else "ccd"
        try:
            await changer.set_enabled(enabled)
        except StoreError as error:
            logger.error("%s: could not save %s: %s", login, word, error)
            return self._outcome(changer, command, False, f"{word} was not saved: the database failed")
        return self._outcome(
            changer, command, True, f"automatic colour changes {'enabled' if enabled else 'disabled'}"
        )

    async def _set_mode(self, changer: Changer, command: SetMode) -> CommandOutcome:
        """``ccm <mode>``: saved before it is acknowledged; it changes no colour by itself."""
        choices = ", ".join(COLOR_MODES)
        mode = command.argument.lower()
        if not mode:
            return self._outcome(changer, command, False, f"ccm needs a mode: {choices}")
        if mode not in COLOR_MODES:
            shown = ascii(command.argument[:40])
            return self._outcome(changer, command, False, f"ccm: unknown mode {shown}: {choices}")
        login = changer.state.login
        try:
            await changer.set_mode(mode)
        except NoPaletteError:
            return self._outcome(
                changer,
                command,
                False,
                f"ccm palette: {login} has no palette yet "
                f"(colorchanger-runner users set {login} --palette red,#9146FF,coral)",
            )
        except StoreError as error:
            logger.error("%s: could not save ccm %s: %s", login, mode, error)
            return self._outcome(changer, command, False, "ccm was not saved: the database failed")
        return self._outcome(changer, command, True, f"colour mode set to {mode}")

    def _outcome(self, changer: Changer, command: ChatCommand, ok: bool, detail: str) -> CommandOutcome:
        outcome = CommandOutcome(changer.user_id, command, ok, detail)
        # A refused command is the chatter's typo, not a fault of the bot: INFO either way.
        logger.info("%s: %s", changer.state.login, detail)
        self.bot.dispatch("colorchanger_command", payload=outcome)
        return outcome
