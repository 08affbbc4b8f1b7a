"""Shared fixtures: the fake Twitch, and host bots as bot authors write them, running real twitchio."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import twitchio
from twitchio.ext import commands

from colorchanger_ext import ColorChanger, ColorSettings, Store
from colorchanger_ext.component import CommandOutcome
from colorchanger_ext.testing import FakeTwitch, FakeUser


@pytest.fixture
async def twitch() -> AsyncIterator[FakeTwitch]:
    """A fake Twitch on 127.0.0.1 with twitchio's endpoints pointed at it."""
    async with FakeTwitch() as fake:
        with fake.patch_twitchio():
            yield fake


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
