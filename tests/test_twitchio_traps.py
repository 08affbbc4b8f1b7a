"""The twitchio traps named in twitchio_compat, each shown, and our workaround shown to hold."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import twitchio
from twitchio.ext import commands

from colorchanger_ext.testing import FakeSession, FakeTwitch
from colorchanger_ext.twitchio_compat import (
    isolated_component_class,
    save_refreshed_tokens_first,
    undo_reconnect_tracking_fix,
)

from .conftest import Bots, HostBot, refreshes, websocket_cleanup


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


async def reconnect_and_settle(twitch: FakeTwitch, bot: HostBot) -> FakeSession:
    """Send session_reconnect and wait until the client has moved and closed its old socket."""
    (session,) = twitch.sessions(user_id=bot.account.id)
    await twitch.send_reconnect(session)
    await twitch.wait_until(
        lambda: not session.reconnecting and session.open_sockets == 1, what="the move to the reconnect URL"
    )
    return session


@pytest.fixture
def twitchio_as_shipped() -> Iterator[None]:
    """twitchio's own Websocket._cleanup, without our fix, for the tests that show the trap."""
    with websocket_cleanup(undo_reconnect_tracking_fix):
        yield


@pytest.mark.usefixtures("twitchio_as_shipped")
async def test_trap_the_socket_a_reconnect_moved_to_is_forgotten(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    session = await reconnect_and_settle(twitch, bot)
    assert bot.websocket_subscriptions() == {}  # twitchio lost the socket it now reads from
    await bots.stop(bot)
    assert session.open_sockets == 1  # so close() left it open
    await twitch.close_session(session, 4003)  # 4003: twitchio does not reconnect, so the test can end


@pytest.mark.usefixtures("reconnect_fix")
async def test_reconnect_fix_keeps_the_new_socket_tracked_and_closed(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    session = await reconnect_and_settle(twitch, bot)
    assert len(bot.websocket_subscriptions()) == 1
    # Chat still flows on the new socket and still changes the colour.
    await bot.command(twitch, "ccc red")
    assert (await twitch.wait_for_color_puts(1, user_id=alice.id))[0].color == "red"
    await bots.stop(bot)
    await twitch.wait_until(lambda: session.open_sockets == 0, what="the client closing its socket")


async def test_refreshed_pair_is_saved_before_use_and_the_app_token_kept_current(
    twitch: FakeTwitch, bots: Bots
) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    saved: list[tuple[str, str, int]] = []  # (access, refresh, colour PUTs the fake had seen by then)

    async def on_refreshed(access: str, refresh: str, expires_in: int | None) -> None:
        saved.append((access, refresh, len(twitch.color_puts)))

    async def on_rejected(error: twitchio.HTTPException) -> None:
        raise AssertionError(f"refresh rejected: {error.status}")

    save_refreshed_tokens_first(bot._http, on_refreshed, on_rejected)
    twitch.expire_access_token(alice)
    await bot.command(twitch, "ccc red")
    puts = await twitch.wait_for_color_puts(2, user_id=alice.id)
    assert [put.status for put in puts] == [401, 204]
    # Saved after the refused PUT and before the retried one, and it is the pair Twitch now honours.
    assert saved == [(alice.access_token, alice.refresh_token, 1)]
    # A call without token_for uses the client's "app token": current, so no second refresh.
    await bot.fetch_users(ids=[alice.id])
    assert refreshes(twitch) == 1
    assert bot._http._app_token == alice.access_token


async def test_rejected_refresh_is_reported(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    rejected: list[int] = []

    async def on_refreshed(access: str, refresh: str, expires_in: int | None) -> None:
        raise AssertionError("no refresh can succeed here")

    async def on_rejected(error: twitchio.HTTPException) -> None:
        rejected.append(error.status)

    save_refreshed_tokens_first(bot._http, on_refreshed, on_rejected)
    twitch.revoke_tokens(alice)
    await bot.command(twitch, "ccc red")
    changer = bot.color_changer._changer
    assert changer is not None
    await changer.wait_idle()
    assert rejected == [400]
    assert changer.state.errors == 1
