"""Colour modes end to end: real twitchio, the fake Twitch, nothing of ours mocked.

Each chat message is followed by the :func:`all_puts` barrier before the next, so no two changes
collapse into one and the colours PUT are exactly one per message, in order.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from colorchanger_ext import ColorSettings, Store
from colorchanger_ext.colors import (
    NAMED_COLORS,
    TWITCH_LIGHT_BACKGROUND,
    PaletteOrder,
    Readability,
    contrast_ratio,
    is_readable,
    nearest_named,
    rainbow_color,
    to_hex,
)
from colorchanger_ext.commands import SetMode
from colorchanger_ext.store import UserState
from colorchanger_ext.testing import FakeTwitch, FakeUser

from .conftest import Bots, HostBot
from .test_component_e2e import all_puts, say

ALL_MODES = "preset, hex, rainbow, palette"


async def prepare(
    database: Path,
    user: FakeUser,
    *,
    mode: str,
    palette: Sequence[str] = (),
    order: PaletteOrder = "cycle",
    readability: Readability = "dark",
    rainbow_step: int = 30,
) -> None:
    """The user's colour settings as `colorchanger-runner users set` leaves them, before the bot starts."""
    async with await Store.open(database) as store:
        await store.ensure_user(user.id, user.login)
        if palette:
            await store.set_palette(user.id, palette, order=order)
        await store.set_readability(user.id, readability)
        await store.set_rainbow_step(user.id, rainbow_step)
        await store.set_mode(user.id, mode)


async def chat(twitch: FakeTwitch, bot: HostBot, count: int) -> list[str]:
    """``count`` messages from the account, each handled and its change landed before the next."""
    for n in range(count):
        await say(twitch, bot, f"message {n}")
        await all_puts(twitch, bot)
    return await all_puts(twitch, bot)


async def stored(bots: Bots, user: FakeUser) -> UserState:
    """The user's row as another process (the CLI) reads it from the file, not the component's copy."""
    async with await Store.open(bots.database) as store:
        state = await store.get_user(user.id)
    assert state is not None
    return state


# --- rainbow --------------------------------------------------------------------------------------------


async def test_rainbow_steps_round_the_wheel_and_goes_on_after_a_restart(
    twitch: FakeTwitch, bots: Bots
) -> None:
    alice = twitch.add_user("alice", turbo=True)
    await prepare(bots.database, alice, mode="rainbow", rainbow_step=45)
    bot = await bots.start(alice)
    colors = await chat(twitch, bot, 3)
    assert colors == [rainbow_color(hue) for hue in (0, 45, 90)]
    assert alice.color == rainbow_color(90)
    await bots.stop(bot)

    restarted = await bots.start(alice)
    after = (await chat(twitch, restarted, 7))[3:]  # the fake keeps every PUT, from before too
    assert after == [rainbow_color(hue % 360) for hue in range(135, 450, 45)]
    state = await stored(bots, alice)
    assert state.rainbow_hue == 45  # 0, 45, ..., 315, 0, 45: round once


async def test_rainbow_on_an_account_without_hex_uses_the_nearest_named_colours(
    twitch: FakeTwitch, bots: Bots
) -> None:
    alice = twitch.add_user("alice", turbo=False)
    await prepare(bots.database, alice, mode="rainbow", rainbow_step=120)
    bot = await bots.start(alice)
    colors = await chat(twitch, bot, 3)
    red, green, blue = (rainbow_color(hue) for hue in (0, 120, 240))
    # The first hex is refused and replaced by the nearest named colour; from then on hex is skipped.
    assert colors == [red, nearest_named(red), nearest_named(green), nearest_named(blue)]
    assert all(color in NAMED_COLORS for color in colors[1:])
    state = await stored(bots, alice)
    assert state.rainbow_hue == 240  # the fallback still moved it on


async def test_rainbow_readable_on_light_chat(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice", turbo=True)
    await prepare(bots.database, alice, mode="rainbow", readability="light")
    bot = await bots.start(alice)
    colors = await chat(twitch, bot, 12)
    assert colors == [rainbow_color(hue, readability="light") for hue in range(0, 360, 30)]
    assert all(contrast_ratio(color, TWITCH_LIGHT_BACKGROUND) >= 3.0 for color in colors)
    assert rainbow_color(60, readability="light") != rainbow_color(60)  # yellow had to be darkened


# --- readability ----------------------------------------------------------------------------------------


async def test_hex_colours_readable_on_light_chat(twitch: FakeTwitch, bots: Bots, tmp_path: Path) -> None:
    alice = twitch.add_user("alice", turbo=True)
    settings = ColorSettings(database=bots.database, mode="hex", readability="light")
    bot = await bots.start(alice, settings=settings)  # a new user gets the configured readability
    colors = await chat(twitch, bot, 10)
    assert len(colors) == 10
    for color in colors:
        assert color.startswith("#")
        assert contrast_ratio(color, TWITCH_LIGHT_BACKGROUND) >= 3.0
    state = await stored(bots, alice)
    assert (state.mode, state.readability) == ("hex", "light")


async def test_hex_colours_readable_on_both_themes(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice", turbo=True)
    await prepare(bots.database, alice, mode="hex", readability="both")
    bot = await bots.start(alice)
    colors = await chat(twitch, bot, 10)
    assert all(is_readable(color, "both") for color in colors)


# --- palette --------------------------------------------------------------------------------------------


async def test_palette_cycles_in_order_and_goes_on_after_a_restart(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice", turbo=True)
    await prepare(bots.database, alice, mode="palette", palette=["red", "#9146FF", "coral"])
    bot = await bots.start(alice)
    assert await chat(twitch, bot, 4) == ["red", "#9146FF", "coral", "red"]
    await bots.stop(bot)
    restarted = await bots.start(alice)
    assert (await chat(twitch, restarted, 2))[4:] == ["#9146FF", "coral"]


async def test_palette_cycle_is_the_users_order_even_against_no_repeat(
    twitch: FakeTwitch, bots: Bots
) -> None:
    alice = twitch.add_user("alice", turbo=True)
    await prepare(bots.database, alice, mode="palette", palette=["red", "red", "blue"])
    settings = ColorSettings(database=bots.database, no_repeat=2)
    bot = await bots.start(alice, settings=settings)
    assert await chat(twitch, bot, 4) == ["red", "red", "blue", "red"]


async def test_palette_shuffle_uses_every_colour_once_per_round_without_back_to_back_repeats(
    twitch: FakeTwitch, bots: Bots
) -> None:
    alice = twitch.add_user("alice", turbo=True)
    palette = ["red", "#9146FF", "coral", "sea_green"]
    await prepare(bots.database, alice, mode="palette", palette=palette, order="shuffle")
    bot = await bots.start(alice)
    colors = await chat(twitch, bot, 6)
    await bots.stop(bot)
    restarted = await bots.start(alice)  # the round in progress is stored, so it goes on
    colors += (await chat(twitch, restarted, 6))[-6:]
    rounds = [colors[0:4], colors[4:8], colors[8:12]]
    assert [sorted(r) for r in rounds] == [sorted(palette)] * 3
    assert all(a != b for a, b in itertools.pairwise(colors))  # no_repeat 1, also across rounds


async def test_palette_hex_entries_on_an_account_without_hex(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice", turbo=False)
    await prepare(bots.database, alice, mode="palette", palette=["#9146FF", "coral"])
    bot = await bots.start(alice)
    colors = await chat(twitch, bot, 3)
    assert colors == ["#9146FF", nearest_named("#9146FF"), "coral", nearest_named("#9146FF")]


# --- ccm ------------------------------------------------------------------------------------------------


async def test_ccm_switches_mode_on_disk_first_and_changes_no_colour(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice", turbo=True)
    bot = await bots.start(alice, prefix="?")
    outcome = await bot.command(twitch, "ccm rainbow")
    assert (outcome.ok, outcome.detail, outcome.command) == (
        True,
        "colour mode set to rainbow",
        SetMode("rainbow"),
    )
    assert (await stored(bots, alice)).mode == "rainbow"
    assert await all_puts(twitch, bot) == []  # the command is not also a change
    assert await chat(twitch, bot, 2) == [rainbow_color(0), rainbow_color(30)]

    assert (await bot.command(twitch, "?CCM Hex")).detail == "colour mode set to hex"
    assert (await stored(bots, alice)).mode == "hex"
    hexes = (await chat(twitch, bot, 1))[2:]
    assert len(hexes) == 1
    assert hexes[0].startswith("#")
    assert hexes[0] not in {rainbow_color(hue) for hue in range(0, 360, 30)}

    assert (await bot.command(twitch, "ccm preset")).ok
    assert (await chat(twitch, bot, 1))[-1] in NAMED_COLORS


async def test_ccm_refusals_say_why_and_change_nothing(twitch: FakeTwitch, bots: Bots) -> None:
    alice = twitch.add_user("alice", turbo=True)
    bot = await bots.start(alice)
    unknown = await bot.command(twitch, "ccm disco")
    assert (unknown.ok, unknown.detail) == (False, f"ccm: unknown mode 'disco': {ALL_MODES}")
    assert (await bot.command(twitch, "ccm rainbow please")).detail == (
        f"ccm: unknown mode 'rainbow please': {ALL_MODES}"
    )
    bare = await bot.command(twitch, "ccm")
    assert (bare.ok, bare.detail) == (False, f"ccm needs a mode: {ALL_MODES}")
    no_palette = await bot.command(twitch, "ccm palette")
    assert not no_palette.ok
    assert no_palette.detail.startswith(
        "ccm palette: alice has no palette yet (colorchanger-runner users set"
    )
    assert (await stored(bots, alice)).mode == "preset"
    assert await all_puts(twitch, bot) == []

    # Given a palette (the CLI, while the bot runs), `ccm palette` works.
    async with await Store.open(bots.database) as store:
        await store.set_palette(alice.id, ["coral", "#9146FF"])
    assert (await bot.command(twitch, "ccm PALETTE")).ok
    assert await chat(twitch, bot, 2) == ["coral", "#9146FF"]


async def test_ccm_from_another_chatter_is_ignored_but_the_owner_may(twitch: FakeTwitch, bots: Bots) -> None:
    alice, mallory, owner = twitch.add_user("alice"), twitch.add_user("mallory"), twitch.add_user("owner")
    bot = await bots.start(alice, owner=owner)
    await twitch.send_chat_message(broadcaster=alice, chatter=mallory, text="ccm rainbow")
    await twitch.send_chat_message(broadcaster=alice, chatter=mallory, text="!ccm hex")
    assert await all_puts(twitch, bot) == []
    assert (await stored(bots, alice)).mode == "preset"
    assert (await bot.command(twitch, "ccm rainbow", chatter=owner)).ok
    assert (await stored(bots, alice)).mode == "rainbow"
    assert to_hex((await chat(twitch, bot, 1))[0]) == rainbow_color(0)
