"""The component end to end: real twitchio, the fake Twitch, nothing of ours mocked.

"Nothing else happened" is proven with a barrier, never a sleep: see :func:`all_puts`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from twitchio.ext import commands

from colorchanger_ext import ColorChanger, ColorSettings, Store
from colorchanger_ext.colors import NAMED_COLORS
from colorchanger_ext.testing import FakeTwitch

from .conftest import Bots, HostBot


async def all_puts(twitch: FakeTwitch, bot: HostBot) -> list[str]:
    """Every colour the account has PUT, once all chat sent so far is handled and its change has landed.

    A bare ``ccc`` changes nothing but is answered; handlers run in arrival order, so its answer
    means every earlier message was handled, and any change one of them started is in the queue.
    """
    await bot.command(twitch, "ccc")
    changer = bot.color_changer._changer
    assert changer is not None
    await changer.wait_idle()
    return [put.color for put in twitch.color_puts if put.user_id == bot.account.id]


async def settled_puts(twitch: FakeTwitch, bot: HostBot, count: int) -> list[str]:
    """Wait for ``count`` PUTs from the account, then return all of them once its queue is empty."""
    await twitch.wait_for_color_puts(count, user_id=bot.account.id)
    return await all_puts(twitch, bot)


async def say(twitch: FakeTwitch, bot: HostBot, text: str, **options: object) -> str:
    """The account types ``text`` in its first channel."""
    return await twitch.send_chat_message(  # type: ignore[misc]
        broadcaster=bot.channels[0], chatter=bot.account, text=text, **options
    )


async def test_own_message_changes_colour_once(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    await say(twitch, bot, "hello chat")
    (color,) = await settled_puts(twitch, bot, 1)
    assert color in NAMED_COLORS
    assert alice.color == NAMED_COLORS[color]
    state = await bot.color_changer.store.get_user(alice.id)
    assert state is not None
    assert state.last_color == color
    assert state.changes == 1


async def test_other_chatter_message_changes_nothing(twitch: FakeTwitch, bots: Bots) -> None:
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    bot = await bots.start(alice)
    await twitch.send_chat_message(broadcaster=alice, chatter=bob, text="hi alice")
    assert await all_puts(twitch, bot) == []
    assert twitch.color_puts == []


async def test_ccd_stops_changes_and_cce_resumes(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    outcome = await bot.command(twitch, "ccd")
    assert outcome.ok
    await say(twitch, bot, "quiet now")
    assert await all_puts(twitch, bot) == []
    assert (await bot.command(twitch, "CCE")).ok
    await say(twitch, bot, "colourful again")
    assert len(await all_puts(twitch, bot)) == 1


async def test_ccc_sets_a_named_colour_and_is_not_also_a_random_change(
    twitch: FakeTwitch, bots: Bots
) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    await bot.command(twitch, "ccc sea green")
    assert await settled_puts(twitch, bot, 1) == ["sea_green"]


async def test_ccc_under_the_host_prefix(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice, prefix="?")
    await bot.command(twitch, "?ccc Hot Pink")
    assert await settled_puts(twitch, bot, 1) == ["hot_pink"]


async def test_ccc_works_while_disabled(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    await bot.command(twitch, "ccd")
    await bot.command(twitch, "ccc coral")
    assert await settled_puts(twitch, bot, 1) == ["coral"]


async def test_ccc_hex_on_a_non_turbo_account_gets_the_nearest_named_colour(
    twitch: FakeTwitch, bots: Bots
) -> None:
    alice = twitch.add_user("alice", turbo=False)
    bot = await bots.start(alice)
    await bot.command(twitch, "ccc #ff00ff")
    # Twitch refuses the hex; the same command still lands, as the perceptually nearest named colour.
    assert await settled_puts(twitch, bot, 2) == ["#FF00FF", "hot_pink"]
    assert alice.color == NAMED_COLORS["hot_pink"]
    state = await bot.color_changer.store.get_user(alice.id)
    assert state is not None
    assert state.hex_refused_at is not None
    # Learned: the next hex request goes straight to the named colour, without a refused PUT first.
    await bot.command(twitch, "ccc #0000f0")
    assert await settled_puts(twitch, bot, 3) == ["#FF00FF", "hot_pink", "blue"]


async def test_ccc_hex_on_a_turbo_account_is_applied_as_is(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice", turbo=True)
    bot = await bots.start(alice)
    await bot.command(twitch, "ccc f0a")
    assert await settled_puts(twitch, bot, 1) == ["#FF00AA"]


async def test_hex_mode_falls_back_to_named_colours_without_losing_the_change(
    twitch: FakeTwitch, bots: Bots, tmp_path: Path
) -> None:
    alice = twitch.add_user("alice", turbo=False)
    bot = await bots.start(alice, settings=ColorSettings(database=tmp_path / "db.sqlite3", mode="hex"))
    await say(twitch, bot, "hello")
    first, second = await settled_puts(twitch, bot, 2)
    assert first.startswith("#")
    assert second in NAMED_COLORS


async def test_bad_ccc_argument_changes_nothing(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    outcome = await bot.command(twitch, "ccc #zzzzzz")
    assert not outcome.ok
    assert "not a colour" in outcome.detail
    assert not (await bot.command(twitch, "ccc")).ok
    assert await all_puts(twitch, bot) == []


async def test_another_chatters_commands_are_ignored(twitch: FakeTwitch, bots: Bots) -> None:
    alice, mallory = twitch.add_user("alice"), twitch.add_user("mallory")
    bot = await bots.start(alice)
    await twitch.send_chat_message(broadcaster=alice, chatter=mallory, text="ccd")
    await twitch.send_chat_message(broadcaster=alice, chatter=mallory, text="ccc red")
    assert await all_puts(twitch, bot) == []
    state = await bot.color_changer.store.get_user(alice.id)
    assert state is not None
    assert state.enabled


async def test_the_bot_owner_may_command_the_account(twitch: FakeTwitch, bots: Bots) -> None:
    alice, owner = twitch.add_user("alice"), twitch.add_user("owner")
    bot = await bots.start(alice, owner=owner)
    assert (await bot.command(twitch, "ccc red", chatter=owner)).ok
    assert await settled_puts(twitch, bot, 1) == ["red"]
    # The owner's ordinary chat is theirs, not the account's: it changes nothing.
    await twitch.send_chat_message(broadcaster=alice, chatter=owner, text="just chatting")
    assert await all_puts(twitch, bot) == ["red"]


async def test_redelivered_message_changes_colour_once(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    await say(twitch, bot, "hello", message_id="m-1")
    assert len(await all_puts(twitch, bot)) == 1
    # Twitch is unsure it was delivered and sends it again (twice, here): no further change.
    await say(twitch, bot, "hello", message_id="m-1", duplicate=True)
    assert len(await all_puts(twitch, bot)) == 1


async def test_shared_chat_copy_changes_colour_once(twitch: FakeTwitch, bots: Bots) -> None:
    alice, partner = twitch.add_user("alice"), twitch.add_user("partner")
    bot = await bots.start(alice, [alice, partner])
    await say(twitch, bot, "hi both", message_id="m-1")
    assert len(await all_puts(twitch, bot)) == 1
    # The same message shared into partner's chat: a new message id, the original as source id.
    await twitch.send_chat_message(
        broadcaster=alice, chatter=alice, text="hi both", message_id="m-1", shared_with=[partner]
    )
    assert len(await all_puts(twitch, bot)) == 1


async def test_burst_collapses_and_the_last_message_wins(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    twitch.helix_delay = 0.2  # Helix slower than the user types
    for n in range(19):
        await say(twitch, bot, f"message {n}")
    await say(twitch, bot, "ccc spring green")
    colors = await settled_puts(twitch, bot, 2)
    assert len(colors) == 2
    assert colors[-1] == "spring_green"
    assert alice.color == NAMED_COLORS["spring_green"]


async def test_burst_of_plain_messages_ends_on_one_applied_colour(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    twitch.helix_delay = 0.2
    for n in range(20):
        await say(twitch, bot, f"message {n}")
    colors = await all_puts(twitch, bot)
    assert len(colors) == 2
    state = await bot.color_changer.store.get_user(alice.id)
    assert state is not None
    assert alice.color == NAMED_COLORS[colors[-1]] == NAMED_COLORS[state.last_color or ""]


async def test_two_bots_in_one_process_change_only_their_own_colour(twitch: FakeTwitch, bots: Bots) -> None:
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    async with await Store.open(bots.database) as store:
        # Both components exist before either bot adds its own: the class-level trap would cross them.
        made: dict[str, ColorChanger] = {}
        first = bots.create(alice, component=lambda bot: made["alice"])
        second = bots.create(bob, component=lambda bot: made["bob"])
        made["alice"] = ColorChanger(first, store=store)
        made["bob"] = ColorChanger(second, store=store)
        await bots.run(first)
        await bots.run(second)
        await first.command(twitch, "ccc red")
        await second.command(twitch, "ccc blue")
        assert await settled_puts(twitch, first, 1) == ["red"]
        assert await settled_puts(twitch, second, 1) == ["blue"]
        await first.command(twitch, "ccd")
        await say(twitch, first, "alice talks while disabled")
        await say(twitch, second, "bob talks")
        assert await all_puts(twitch, first) == ["red"]
        assert len(await all_puts(twitch, second)) == 2
        alice_state, bob_state = await store.get_user(alice.id), await store.get_user(bob.id)
        assert alice_state is not None
        assert not alice_state.enabled
        assert bob_state is not None
        assert bob_state.enabled


async def test_two_bots_loading_the_module_stay_apart(
    twitch: FakeTwitch, bots: Bots, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLORCHANGER_DATABASE", str(tmp_path / "module.sqlite3"))
    alice, bob = twitch.add_user("alice"), twitch.add_user("bob")
    first = await bots.start(alice, load_module=True)
    second = await bots.start(bob, load_module=True)
    await say(twitch, first, "from alice")
    assert len(await all_puts(twitch, first)) == 1
    assert await all_puts(twitch, second) == []
    await say(twitch, second, "from bob")
    assert len(await all_puts(twitch, second)) == 1
    assert len(await all_puts(twitch, first)) == 1
    assert first.color_changer is not second.color_changer
    assert first.color_changer.store.path == tmp_path / "module.sqlite3"


async def test_state_survives_a_restart(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    await bot.command(twitch, "ccc firebrick")
    await settled_puts(twitch, bot, 1)
    await bot.command(twitch, "ccd")
    await bots.stop(bot)

    restarted = await bots.start(alice)
    await say(twitch, restarted, "after restart, still disabled")
    assert await all_puts(twitch, restarted) == ["firebrick"]
    await restarted.command(twitch, "cce")
    await say(twitch, restarted, "enabled again")
    colors = await all_puts(twitch, restarted)
    assert len(colors) == 2
    # The recent colour was remembered too: the random change did not repeat it.
    assert colors[-1] != "firebrick"
    state = await restarted.color_changer.store.get_user(alice.id)
    assert state is not None
    assert state.changes == 2


async def test_a_broken_database_path_fails_the_load_cleanly(
    twitch: FakeTwitch, bots: Bots, tmp_path: Path
) -> None:
    alice = twitch.add_user("alice")
    bot = bots.create(alice, settings=ColorSettings(database=tmp_path / "missing" / "db.sqlite3"))
    try:
        with pytest.raises(commands.ComponentLoadError) as failure:
            async with asyncio.timeout(5):
                await bot.start(
                    token=alice.access_token, with_adapter=False, load_tokens=False, save_tokens=False
                )
    finally:
        await bot.close()
    assert "missing" in str(failure.value.__cause__)
    assert bot.get_component("ColorChanger") is None
