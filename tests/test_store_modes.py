"""The store's colour-mode state (migration 0003): settings, and progress saved with the colour applied."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from colorchanger_ext.colors import PaletteError
from colorchanger_ext.migrate import apply_migrations, load_migrations
from colorchanger_ext.store import ModeProgress, NoPaletteError, Store, UnknownUserError


def sql(path: Path, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        with conn:
            return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


async def test_a_user_from_before_0003_gets_the_mode_defaults(db: Path) -> None:
    async with aiosqlite.connect(db, isolation_level=None) as conn:
        await apply_migrations(conn, load_migrations()[:2])
    sql(
        db,
        "INSERT INTO users (user_id, login, mode, recent_colors, created_at, updated_at) "
        "VALUES ('1', 'alice', 'hex', '[\"red\"]', 1, 1)",
    )
    async with await Store.open(db) as store:
        user = await store.get_user("1")
    assert user is not None
    assert (user.mode, user.recent_colors) == ("hex", ("red",))
    assert (user.readability, user.rainbow_step, user.rainbow_hue) == ("dark", 30, None)
    assert (user.palette, user.palette_order, user.palette_position, user.palette_remaining) == (
        (),
        "cycle",
        0,
        (),
    )


async def test_new_users_get_the_given_readability_and_step_existing_ones_keep_theirs(store: Store) -> None:
    created = await store.ensure_user("1", "alice", readability="light", rainbow_step=45)
    assert (created.readability, created.rainbow_step) == ("light", 45)
    again = await store.ensure_user("1", "alice", readability="both", rainbow_step=10)
    assert again == created
    with pytest.raises(ValueError, match="readability must be one of"):
        await store.ensure_user("2", "bob", readability="dim")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rainbow_step"):
        await store.ensure_user("2", "bob", rainbow_step=0)
    assert await store.get_user("2") is None


async def test_mode_settings_round_trip_and_survive_reopen(db: Path) -> None:
    async with await Store.open(db) as store:
        await store.ensure_user("1", "alice")
        assert (await store.set_mode("1", "rainbow")).mode == "rainbow"
        assert (await store.set_readability("1", "both")).readability == "both"
        assert (await store.set_rainbow_step("1", 359)).rainbow_step == 359
        user = await store.set_palette("1", ["Red", "#9146ff", "blue violet"], order="shuffle")
        assert (user.palette, user.palette_order) == (("red", "#9146FF", "blue_violet"), "shuffle")
        assert (await store.set_palette_order("1", "cycle")).palette_order == "cycle"
        assert (await store.set_mode("1", "palette")).mode == "palette"
        saved = await store.get_user("1")
    async with await Store.open(db) as store:
        assert await store.get_user("1") == saved
    assert sql(db, "SELECT palette FROM users") == [('["red", "#9146FF", "blue_violet"]',)]


async def test_bad_mode_settings_are_refused(store: Store) -> None:
    await store.ensure_user("1", "alice")
    before = await store.get_user("1")
    with pytest.raises(ValueError, match="readability must be one of dark, light, both, off"):
        await store.set_readability("1", "sepia")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rainbow_step must be a whole number of degrees from 1 to 359"):
        await store.set_rainbow_step("1", 360)
    with pytest.raises(ValueError, match="palette_order must be one of cycle, shuffle"):
        await store.set_palette_order("1", "zigzag")  # type: ignore[arg-type]
    with pytest.raises(PaletteError, match="palette entry 2: not a colour"):
        await store.set_palette("1", ["red", "reddish"])
    with pytest.raises(UnknownUserError):
        await store.set_readability("9", "dark")
    with pytest.raises(UnknownUserError):
        await store.set_mode("9", "palette")
    assert await store.get_user("1") == before


async def test_palette_mode_needs_a_palette(store: Store) -> None:
    await store.ensure_user("1", "alice")
    with pytest.raises(NoPaletteError, match="has no palette"):
        await store.set_mode("1", "palette")
    assert (await store.get_user("1")).mode == "preset"  # type: ignore[union-attr]
    await store.set_palette("1", ["red"])
    await store.set_mode("1", "palette")
    with pytest.raises(NoPaletteError, match="palette mode"):
        await store.set_palette("1", [])
    await store.set_mode("1", "hex")
    assert (await store.set_palette("1", [])).palette == ()


async def test_staged_progress_is_saved_with_the_colour_only(store: Store) -> None:
    await store.ensure_user("1", "alice")
    await store.set_palette("1", ["red", "blue", "coral"])
    store.stage_progress("1", ModeProgress(rainbow_hue=30))
    # A failure is no progress: the rainbow stays where it was until a colour lands.
    assert (await store.record_error("1", "Twitch answered 503")).rainbow_hue is None
    user = await store.record_color("1", "#FF8000", keep_recent=1)
    assert (user.rainbow_hue, user.last_color) == (30, "#FF8000")
    # Staged once, saved once: the next colour (a `ccc`, say) does not move it again.
    assert (await store.record_color("1", "red", keep_recent=1)).rainbow_hue == 30

    progress = ModeProgress(palette=("red", "blue", "coral"), palette_position=2, palette_remaining=(0, 2))
    store.stage_progress("1", progress)
    user = await store.record_color("1", "blue", keep_recent=1)
    assert (user.palette_position, user.palette_remaining, user.rainbow_hue) == (2, (0, 2), 30)

    store.stage_progress("1", ModeProgress(rainbow_hue=60))
    store.stage_progress("1", None)  # withdrawn: the pick was an exact colour after all
    assert (await store.record_color("1", "red", keep_recent=1)).rainbow_hue == 30


async def test_progress_for_a_palette_changed_meanwhile_is_not_saved(store: Store) -> None:
    await store.ensure_user("1", "alice")
    await store.set_palette("1", ["red", "blue", "coral"])
    store.stage_progress("1", ModeProgress(palette=("red", "blue", "coral"), palette_position=2))
    await store.set_palette("1", ["green", "hot pink"])  # the CLI, while the change was in flight
    user = await store.record_color("1", "blue", keep_recent=1)
    assert (user.palette, user.palette_position, user.palette_remaining) == (("green", "hot_pink"), 0, ())


async def test_setting_a_palette_starts_it_over(store: Store) -> None:
    await store.ensure_user("1", "alice")
    await store.set_palette("1", ["red", "blue"], order="shuffle")
    store.stage_progress("1", ModeProgress(palette=("red", "blue"), palette_remaining=(1,)))
    await store.record_color("1", "red", keep_recent=1)
    user = await store.set_palette("1", ["red", "blue"])
    assert (user.palette_position, user.palette_remaining, user.palette_order) == (0, (), "shuffle")


async def test_damaged_mode_columns_read_as_defaults(store: Store, db: Path) -> None:
    await store.ensure_user("1", "alice")
    sql(
        db,
        "UPDATE users SET readability = 'sepia', rainbow_step = 0, rainbow_hue = 400, palette = '{', "
        "palette_order = 'zigzag', palette_remaining = '[1, \"x\", -1, true, 2]'",
    )
    user = await store.get_user("1")
    assert user is not None
    assert (user.readability, user.rainbow_step, user.rainbow_hue) == ("dark", 30, None)
    assert (user.palette, user.palette_order, user.palette_remaining) == ((), "cycle", (1, 2))
