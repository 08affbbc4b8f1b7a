"""colorchanger_ext.colors, the colour modes: readability per theme, rainbow order, palettes."""

from __future__ import annotations

import colorsys
import itertools
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colorchanger_ext.colors import (
    BOTH_MAX_CONTRAST,
    DEFAULT_MIN_CONTRAST,
    MAX_PALETTE,
    NAMED_COLORS,
    READABILITIES,
    THEME_BACKGROUNDS,
    THEME_LIGHTNESS,
    TWITCH_DARK_BACKGROUND,
    TWITCH_LIGHT_BACKGROUND,
    PaletteError,
    _box_grid,
    check_rainbow_step,
    check_readability,
    contrast_bound,
    contrast_ratio,
    is_readable,
    max_reachable_contrast,
    next_color,
    next_palette_color,
    next_rainbow_hue,
    parse_palette,
    rainbow_color,
    random_hex,
    random_readable,
    to_hex,
)

CANONICAL_HEX = re.compile(r"#[0-9A-F]{6}")
MAX_REACH = max_reachable_contrast()
readabilities = st.sampled_from(READABILITIES)
contrasts = st.floats(1.0, MAX_REACH)
steps = st.integers(1, 359)
hues = st.integers(0, 359)
seeds = st.integers(0, 2**32)


def hue_of(color: str) -> float:
    hue, _, _ = colorsys.rgb_to_hls(*(int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)))
    return hue * 360


def hue_distance(a: float, b: float) -> float:
    return min(abs(a - b) % 360, 360 - abs(a - b) % 360)


def assert_readable(color: str, readability: str, min_contrast: float) -> None:
    bound = {"off": 1.0, "both": min(min_contrast, BOTH_MAX_CONTRAST)}.get(readability, min_contrast)
    for background in THEME_BACKGROUNDS[readability]:  # type: ignore[index]
        assert contrast_ratio(color, background) >= bound, (color, readability, background, bound)


# --- readability ----------------------------------------------------------------------------------------


def test_the_default_bounds_and_what_each_theme_can_reach() -> None:
    assert DEFAULT_MIN_CONTRAST == 3.0
    assert THEME_BACKGROUNDS["both"] == (TWITCH_DARK_BACKGROUND, TWITCH_LIGHT_BACKGROUND)
    assert contrast_bound("dark") == contrast_bound("light") == contrast_bound("both") == 3.0
    assert contrast_bound("off", MAX_REACH) == 1.0
    assert contrast_bound("both", 4.5) == BOTH_MAX_CONTRAST
    # Every valid min_contrast (checked against the dark theme) is reachable on the light box too.
    light = max(ratio for _, ratio in _box_grid((TWITCH_LIGHT_BACKGROUND,), THEME_LIGHTNESS["light"]))
    assert light > MAX_REACH
    # Nothing reads better than 4.21:1 on both themes; the random box gets within 0.001 of that.
    both = max(ratio for _, ratio in _box_grid(THEME_BACKGROUNDS["both"], THEME_LIGHTNESS["both"]))
    assert BOTH_MAX_CONTRAST < both < 4.21
    # Pure red: 4.43 on dark and 4.00 on light, the reason 4.5:1 is not the default on either.
    assert contrast_ratio("red", TWITCH_LIGHT_BACKGROUND) == pytest.approx(4.0, abs=0.01)


def test_every_rainbow_hue_reaches_the_both_cap() -> None:
    for hue in range(360):
        color = rainbow_color(hue, readability="both", min_contrast=MAX_REACH)
        assert is_readable(color, "both", MAX_REACH)
        assert min(contrast_ratio(color, bg) for bg in THEME_BACKGROUNDS["both"]) >= BOTH_MAX_CONTRAST


@pytest.mark.parametrize("value", ["Dark", "", None, "dim", 1])
def test_check_readability_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="readability must be one of dark, light, both, off"):
        check_readability(value)


@settings(deadline=None)
@given(seeds, readabilities, contrasts)
def test_random_readable_meets_the_bound_in_its_box(seed: int, readability: str, min_contrast: float) -> None:
    color = random_readable(random.Random(seed), readability=readability, min_contrast=min_contrast)  # type: ignore[arg-type]
    assert CANONICAL_HEX.fullmatch(color)
    assert_readable(color, readability, min_contrast)
    assert is_readable(color, readability, min_contrast)  # type: ignore[arg-type]
    _, lightness, _ = colorsys.rgb_to_hls(*(int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)))
    low, high = THEME_LIGHTNESS[readability]  # type: ignore[index]
    assert low - 0.01 <= lightness <= high + 0.01


def test_random_readable_on_dark_is_random_hex() -> None:
    assert random_readable(random.Random(5), readability="dark") == random_hex(random.Random(5))


@settings(deadline=None)
@given(seeds, readabilities, st.lists(st.sampled_from(list(NAMED_COLORS)), max_size=4), st.integers(0, 4))
def test_next_color_hex_honours_readability_and_no_repeat(
    seed: int, readability: str, recent: list[str], no_repeat: int
) -> None:
    color = next_color(
        random.Random(seed),
        mode="hex",
        recent=recent,
        no_repeat=no_repeat,
        readability=readability,  # type: ignore[arg-type]
    )
    assert_readable(color, readability, DEFAULT_MIN_CONTRAST)
    banned = {to_hex(c) for c in recent[len(recent) - no_repeat :]} if no_repeat else set()
    assert color not in banned


# --- rainbow ---------------------------------------------------------------------------------------------


@given(st.none() | hues, steps, st.integers(1, 50))
def test_rainbow_hues_step_round_the_wheel(start: int | None, step: int, count: int) -> None:
    hue_list = []
    hue = start
    for _ in range(count):
        hue = next_rainbow_hue(hue, step)
        hue_list.append(hue)
    assert hue_list[0] == (0 if start is None else (start + step) % 360)
    for before, after in itertools.pairwise(hue_list):
        assert 0 <= after < 360
        assert (after - before) % 360 == step


@settings(deadline=None)
@given(hues, readabilities, contrasts)
def test_rainbow_colour_is_readable_and_keeps_its_hue(
    hue: int, readability: str, min_contrast: float
) -> None:
    color = rainbow_color(hue, readability=readability, min_contrast=min_contrast)  # type: ignore[arg-type]
    assert CANONICAL_HEX.fullmatch(color)
    assert_readable(color, readability, min_contrast)
    if min_contrast <= 10:  # past that the dark theme needs near-white, where 8-bit hues blur
        assert hue_distance(hue_of(color), hue) <= 1.0


@given(hues, readabilities)
def test_a_readable_pure_hue_is_left_alone(hue: int, readability: str) -> None:
    pure = rainbow_color(hue, readability="off")
    _, lightness, saturation = colorsys.rgb_to_hls(*(int(pure[i : i + 2], 16) / 255 for i in (1, 3, 5)))
    assert (round(lightness, 2), saturation) == (0.5, 1.0)
    if is_readable(pure, readability):  # type: ignore[arg-type]
        assert rainbow_color(hue, readability=readability) == pure  # type: ignore[arg-type]


def test_rainbow_lightens_for_dark_and_darkens_for_light() -> None:
    assert rainbow_color(240, readability="off") == "#0000FF"
    assert rainbow_color(240, readability="dark") == "#4646FF"  # blue, lightened until 3:1 on #18181B
    assert rainbow_color(240, readability="light") == "#0000FF"  # already 8.6:1 on white
    assert rainbow_color(60, readability="light") == "#9A9A00"  # yellow, darkened until 3:1 on white


@pytest.mark.parametrize("step", [0, 360, -30, 30.0, True, "30"])
def test_bad_rainbow_steps(step: object) -> None:
    with pytest.raises(ValueError, match="rainbow_step must be a whole number of degrees from 1 to 359"):
        check_rainbow_step(step)
    with pytest.raises(ValueError, match="rainbow_step"):
        next_rainbow_hue(0, step)  # type: ignore[arg-type]


@pytest.mark.parametrize("hue", [-1, 360, 12.5, None])
def test_bad_rainbow_hues(hue: object) -> None:
    with pytest.raises(ValueError, match="hue must be a whole number"):
        rainbow_color(hue)  # type: ignore[arg-type]


# --- palette ---------------------------------------------------------------------------------------------

palette_colors = st.sampled_from(list(NAMED_COLORS)) | st.builds(
    lambda v: f"#{v:06X}", st.integers(0, 0xFFFFFF)
)
palettes = st.lists(palette_colors, min_size=1, max_size=8)
unique_palettes = st.lists(palette_colors, min_size=1, max_size=8, unique_by=to_hex)


@given(palettes, st.integers(0, 20), st.integers(1, 30))
def test_cycle_order_from_a_position(palette: list[str], position: int, count: int) -> None:
    """no_repeat does not apply: the order is the user's, so recent colours do not change it."""
    expected = [palette[(position + i) % len(palette)] for i in range(count)]
    got: list[str] = []
    for _ in range(count):
        pick = next_palette_color(
            random.Random(0), palette, order="cycle", position=position, recent=got, no_repeat=5
        )
        got.append(pick.color)
        position = pick.position
        assert pick.remaining == ()
    assert got == expected


@settings(deadline=None)
@given(seeds, unique_palettes, st.integers(0, 5), st.integers(1, 4), st.lists(palette_colors, max_size=5))
def test_shuffle_uses_each_entry_once_per_round(
    seed: int, palette: list[str], no_repeat: int, rounds: int, history: list[str]
) -> None:
    rng = random.Random(seed)
    recent = list(history)
    remaining: tuple[int, ...] = ()
    for _ in range(rounds):
        used = []
        for _ in range(len(palette)):
            pick = next_palette_color(
                rng, palette, order="shuffle", remaining=remaining, recent=recent, no_repeat=no_repeat
            )
            used.append(pick.color)
            recent.append(pick.color)
            remaining = pick.remaining
        assert sorted(used) == sorted(palette)  # every entry once: no repeat until the list is exhausted
        assert remaining == ()


@settings(deadline=None)
@given(seeds, unique_palettes.filter(lambda p: len(p) >= 2), st.integers(1, 5))
def test_shuffle_does_not_repeat_across_a_round_boundary(
    seed: int, palette: list[str], no_repeat: int
) -> None:
    rng = random.Random(seed)
    recent: list[str] = []
    remaining: tuple[int, ...] = ()
    for _ in range(4 * len(palette)):
        pick = next_palette_color(
            rng, palette, order="shuffle", remaining=remaining, recent=recent, no_repeat=no_repeat
        )
        if recent:
            assert to_hex(pick.color) != to_hex(recent[-1])
        recent.append(pick.color)
        remaining = pick.remaining


def test_shuffle_prefers_entries_outside_the_last_no_repeat_colours() -> None:
    palette = ["red", "blue", "coral", "green"]
    for seed in range(20):
        pick = next_palette_color(
            random.Random(seed), palette, order="shuffle", recent=["#FF0000", "blue", "coral"], no_repeat=3
        )
        assert pick.color == "green"
        assert sorted(pick.remaining) == [0, 1, 2]
    # Only banned ones left: the oldest ban is forgotten first.
    pick = next_palette_color(
        random.Random(0), palette, order="shuffle", remaining=(0, 1), recent=["red", "blue"], no_repeat=2
    )
    assert pick.color == "red"


def test_shuffle_drops_stale_remaining_entries() -> None:
    pick = next_palette_color(random.Random(0), ["red", "blue"], order="shuffle", remaining=(7, 1, 1, -2))
    assert (pick.color, pick.remaining) == ("blue", ())


def test_cycle_wraps_and_repairs_a_bad_position() -> None:
    assert next_palette_color(random.Random(0), ["red", "blue"], order="cycle", position=1).position == 0
    assert next_palette_color(random.Random(0), ["red", "blue"], order="cycle", position=5).color == "blue"
    assert next_palette_color(random.Random(0), ["red", "blue"], order="cycle", position=-4).color == "red"


def test_next_palette_color_rejects() -> None:
    with pytest.raises(PaletteError, match="empty"):
        next_palette_color(random.Random(0), [], order="cycle")
    with pytest.raises(ValueError, match="palette order must be one of cycle, shuffle"):
        next_palette_color(random.Random(0), ["red"], order="zigzag")  # type: ignore[arg-type]


def test_parse_palette() -> None:
    assert parse_palette("red, #9146ff ,Blue Violet,f0a,navy") == (
        "red",
        "#9146FF",
        "blue_violet",
        "#FF00AA",
        "#000080",
    )
    assert parse_palette(["coral", "coral"]) == ("coral", "coral")  # repeats are the user's choice
    assert parse_palette("") == parse_palette("  ") == parse_palette([]) == ()
    assert len(parse_palette(",".join(["red"] * MAX_PALETTE))) == MAX_PALETTE


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("red,#zzz", "palette entry 2: not a colour: '#zzz'"),
        ("red,,blue", "palette entry 2: not a colour: ''"),
        ("red,", "palette entry 2: not a colour: ''"),
        ("bluish", "palette entry 1: not a colour: 'bluish'"),
        ("red,blue,Random", "palette entry 3: 'random' is not a colour a palette can hold"),
        (",".join(["red"] * (MAX_PALETTE + 1)), f"a palette holds at most {MAX_PALETTE} colours, not 33"),
    ],
)
def test_parse_palette_names_the_bad_entry(entries: str, message: str) -> None:
    with pytest.raises(PaletteError) as caught:
        parse_palette(entries)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)
