"""The account's own messages and commands take effect in the order Twitch delivered them."""

from __future__ import annotations

import time

from colorchanger_ext.testing import FakeTwitch

from .conftest import Bots, puts_of


async def test_a_message_right_after_ccd_changes_nothing(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice")
    bot = await bots.start(alice)
    await bot.command(twitch, "ccc red")  # the changer exists and its state is loaded
    changer = await bot.color_changer.changer("alice")
    for attempt in range(5):
        await bot.command(twitch, "cce")
        await changer.wait_idle()
        since = time.monotonic()
        # Back to back: twitchio hands each to a task of its own before the first is done.
        await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="ccd")
        await twitch.send_chat_message(broadcaster=alice, chatter=alice, text="brb")
        outcome = await bot.command(twitch, "ccd")  # handled after both, in order
        assert outcome.ok
        await changer.wait_idle()
        assert puts_of(twitch, alice, since=since, status=None) == [], f"attempt {attempt}: 'brb' after 'ccd'"
