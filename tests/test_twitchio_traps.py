"""The twitchio traps named in twitchio_compat, each shown, and our workaround shown to hold."""

from __future__ import annotations

import asyncio
from typing import Any

import twitchio
from twitchio.ext import commands

from colorchanger_ext.testing import FakeTwitch
from colorchanger_ext.twitchio_compat import isolated_component_class

from .conftest import Bots


class Counter(commands.Component):
    """A component with per-instance state, the way any real component has."""

    def __init__(self, label: str) -> None:
        self.label = label

    @commands.Component.listener("message")
    async def event_message(self, message: twitchio.ChatMessage) -> None:
        pass


def bound_instance(component: Any) -> Any:
    """The instance twitchio will call the listener on, as a bot reads it when the component is added."""
    (listener,) = component.__all_listeners__["event_message"]
    return listener.args[0]


def test_trap_listeners_live_on_the_class() -> None:
    first = Counter("first")
    second = Counter("second")
    # twitchio stores the bound listeners on the class: the first bot would call the second instance.
    assert bound_instance(first) is second


def test_isolated_class_keeps_each_instance_its_own_listeners() -> None:
    first = isolated_component_class(Counter)("first")
    second = isolated_component_class(Counter)("second")
    assert bound_instance(first) is first
    assert bound_instance(second) is second
    assert isinstance(first, Counter)
    assert type(first).__name__ == "Counter"


def test_isolating_an_isolated_class_is_a_no_op() -> None:
    isolated = isolated_component_class(Counter)
    assert isolated_component_class(isolated) is isolated


class Pinger(commands.Component):
    """An ordinary twitchio command, to watch which messages twitchio runs commands for."""

    def __init__(self) -> None:
        self.callers: list[str] = []
        self.called = asyncio.Event()

    @commands.command()
    async def ping(self, ctx: commands.Context[Any]) -> None:
        self.callers.append(ctx.chatter.name or "")
        self.called.set()


async def test_trap_own_messages_never_reach_twitchio_commands(twitch: FakeTwitch, bots: Bots) -> None:
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    bot = await bots.start(alice)
    pinger = Pinger()
    await bot.add_component(pinger)
    await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="!ping")
    await twitch.send_chat_message(broadcaster=alice, chatter=bob, text="!ping")
    async with asyncio.timeout(5):
        await pinger.called.wait()
    # Bot.event_message drops the account's own message, so only bob's ran the command...
    assert pinger.callers == ["bob"]
    # ...while the component's listener still sees the account's own messages: "!ping" was chat to
    # it (a random change, which the command may overtake) and "!ccc red" a command.
    outcome = await bot.command(twitch, "!ccc red")
    assert outcome.ok
    changer = bot.color_changer._changer
    assert changer is not None
    await changer.wait_idle()
    assert twitch.color_puts[-1].color == "red"
