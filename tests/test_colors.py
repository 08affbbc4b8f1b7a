"""colorchanger_ext.colors: parsing is total (ColorError or a valid Twitch colour), picks are readable."""

from __future__ import annotations

import colorsys
import math
import random
import re

import colour
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colorchanger_ext.colors import (
    DEFAULT_MIN_CONTRAST,
    LIGHTNESS_BOUNDS,
    NAMED_COLORS,
    RANDOM,
    SATURATION_BOUNDS,
    TWITCH_DARK_BACKGROUND,
    ColorError,
    _ciede2000,
    check_min_contrast,
    contrast_ratio,
    is_hex,
    max_reachable_contrast,
    nearest_named,
    next_color,
    parse_color,
    random_hex,
    random_named,
    to_hex,
)

CANONICAL_HEX = re.compile(r"#[0-9A-F]{6}")
MAX_REACH = max_reachable_contrast()
NAMES = list(NAMED_COLORS)


def assert_valid_twitch_color(result: str) -> None:
    assert result in NAMED_COLORS or result == RANDOM or CANONICAL_HEX.fullmatch(result), result


def assert_loggable(error: ColorError) -> None:
    message = str(error)
    assert message.startswith("not a colour: ")
    assert len(message) < 80
    assert message.isascii(), message
    assert message.isprintable(), message


# --- constants ---------------------------------------------------------------------------------------


def test_named_colors_are_the_fifteen_twitch_colours_and_read_only() -> None:
    assert len(NAMED_COLORS) == 15
    assert NAMED_COLORS["blue_violet"] == "#8A2BE2"
    assert all(CANONICAL_HEX.fullmatch(value) for value in NAMED_COLORS.values())
    with pytest.raises(TypeError):
        NAMED_COLORS["pink"] = "#FFC0CB"  # type: ignore[index]


# --- parse_color ------------------------------------------------------------------------------------


@settings(deadline=None)
@given(st.text() | st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127)))
def test_parse_color_is_total(text: str) -> None:
    try:
        result = parse_color(text)
    except ColorError as error:  # any other exception type fails the test
        assert_loggable(error)
    else:
        assert_valid_twitch_color(result)


@st.composite
def spellings(draw: st.DrawFn, name: str) -> str:
    words = name.split("_")
    if draw(st.booleans()):
        text = "".join(word.capitalize() for word in words)  # CamelCase
    else:
        separator = draw(st.sampled_from([" ", "_", "-", "", "  ", " - "]))
        text = separator.join(words)
        text = "".join(c.upper() if draw(st.booleans()) else c for c in text)
    padding = st.sampled_from(["", " ", "\t", "\n", "  "])
    return draw(padding) + text + draw(padding)


@given(st.data())
def test_every_spelling_of_a_named_colour_parses_to_it(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(NAMES))
    assert parse_color(data.draw(spellings(name))) == name


@given(st.integers(0, 0xFFFFFF), st.booleans(), st.lists(st.booleans(), min_size=6, max_size=6))
def test_six_digit_hex_parses(value: int, hash_sign: bool, upper: list[bool]) -> None:
    digits = "".join(d.upper() if u else d for d, u in zip(f"{value:06x}", upper, strict=True))
    assert parse_color(("#" if hash_sign else "") + digits) == f"#{value:06X}"


@given(st.integers(0, 0xFFF), st.booleans(), st.booleans())
def test_three_digit_hex_parses(value: int, hash_sign: bool, upper: bool) -> None:
    digits = f"{value:03X}" if upper else f"{value:03x}"
    expected = "#" + "".join(d * 2 for d in f"{value:03X}")
    assert parse_color(("#" if hash_sign else "") + digits) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("random", RANDOM),
        ("  RANDOM \n", RANDOM),
        ("Random", RANDOM),
        ("blue_violet", "blue_violet"),
        ("blue violet", "blue_violet"),
        ("BlueViolet", "blue_violet"),
        ("BLUE_VIOLET", "blue_violet"),
        ("blue-violet", "blue_violet"),
        ("Blue  Violet", "blue_violet"),
        ("green", "green"),  # Twitch name wins over CSS green
        ("goldenrod", "golden_rod"),  # CSS spelling of a Twitch name
        ("HotPink", "hot_pink"),
        ("purple", "#800080"),  # CSS names via the colour package
        ("navy", "#000080"),
        ("dark blue", "#00008B"),
        ("#abc", "#AABBCC"),
        ("abc", "#AABBCC"),
        ("#aabbcc", "#AABBCC"),
        ("AaBbCc", "#AABBCC"),
        (" #8a2be2 ", "#8A2BE2"),
    ],
)
def test_parse_color_accepts(text: str, expected: str) -> None:
    assert parse_color(text) == expected


def test_rebeccapurple_follows_the_colour_package() -> None:
    if "rebeccapurple" in colour.COLOR_NAME_TO_RGB:
        assert parse_color("rebeccapurple") == "#663399"
    else:
        with pytest.raises(ColorError):
            parse_color("rebeccapurple")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "#zzzzzz",
        "#abcd",
        "#ab",
        "x" * 10_000,
        "red" + " " * 10_000,
        "re\x00d",
        "\x1b[31mred",
        "red\x7f",
        "blue\tviolet",
        "\u043e\u0435",  # Cyrillic look-alikes of 'oe'
        "\uff52\uff45\uff44",  # fullwidth 'red'
        "\u212ahaki",  # Kelvin sign, which lower() turns into an ASCII k
        "r\u200bed",  # zero-width space
        "'; DROP TABLE users; --",
        "red; DROP TABLE users",
        "rgb(255, 0, 0)",
        "transparent",
        "bluish",
        "_red",
        "# abc",
    ],
)
def test_parse_color_rejects(text: str) -> None:
    with pytest.raises(ColorError) as caught:
        parse_color(text)
    assert_loggable(caught.value)


def test_color_error_message_is_escaped_and_truncated() -> None:
    assert str(ColorError("re\x00d")) == r"not a colour: 're\x00d'"
    long = str(ColorError("\x1b" * 10_000))
    assert len(long) < 80
    assert long.endswith("...")
    assert isinstance(ColorError("x"), ValueError)


# --- to_hex / is_hex / contrast_ratio ----------------------------------------------------------------


def test_to_hex_and_is_hex() -> None:
    assert to_hex("red") == "#FF0000"
    assert to_hex("#ff0000") == "#FF0000"
    assert to_hex("Blue Violet") == "#8A2BE2"
    with pytest.raises(ColorError):
        to_hex(RANDOM)
    assert is_hex("#8A2BE2")
    assert is_hex("#8a2be2")
    for not_hex in ("blue_violet", "#abc", "8A2BE2", "#8A2BE2 "):
        assert not is_hex(not_hex)


def test_contrast_ratio_known_values() -> None:
    assert contrast_ratio("#FFFFFF", "#000000") == pytest.approx(21)
    assert contrast_ratio("#000000", "#FFFFFF") == pytest.approx(21)
    assert contrast_ratio("#8A2BE2", "#8A2BE2") == pytest.approx(1)
    assert contrast_ratio("#FF0000", "#000000") == pytest.approx(5.252, abs=1e-3)
    # pure red misses WCAG's 4.5:1 on Twitch's dark chat, the reason DEFAULT_MIN_CONTRAST is 3
    assert contrast_ratio("red", TWITCH_DARK_BACKGROUND) == pytest.approx(4.431, abs=1e-3)


# --- random_named / random_hex / check_min_contrast ---------------------------------------------------


def test_random_named_excludes_by_value_and_drops_the_oldest_when_all_are_excluded() -> None:
    rng = random.Random(0)
    everything_but_red = [name for name in NAMES if name != "red"]
    assert random_named(rng, exclude=everything_but_red) == "red"
    assert random_named(rng, exclude=[*everything_but_red, "#FF0000"]) == "blue"  # the oldest ban goes
    assert random_named(rng, exclude=NAMES) == NAMES[0]
    assert random_named(rng, exclude=["not a colour", *NAMES[1:]]) == NAMES[0]


@settings(deadline=None)
@given(st.integers(0, 2**32), st.floats(1.0, MAX_REACH))
def test_random_hex_meets_min_contrast(seed: int, min_contrast: float) -> None:
    result = random_hex(random.Random(seed), min_contrast=min_contrast)
    assert CANONICAL_HEX.fullmatch(result)
    assert contrast_ratio(result, TWITCH_DARK_BACKGROUND) >= min_contrast
    _, lightness, saturation = colorsys.rgb_to_hls(*(int(result[i : i + 2], 16) / 255 for i in (1, 3, 5)))
    assert SATURATION_BOUNDS[0] - 0.02 <= saturation <= SATURATION_BOUNDS[1]
    assert LIGHTNESS_BOUNDS[0] - 0.01 <= lightness <= LIGHTNESS_BOUNDS[1] + 0.01


def test_random_hex_on_a_light_background_and_at_the_limit() -> None:
    reach = max_reachable_contrast("#FFFFFF")
    result = random_hex(random.Random(1), background="#FFFFFF", min_contrast=reach)
    assert contrast_ratio(result, "#FFFFFF") >= reach


def test_random_hex_is_deterministic_for_a_seed_and_honours_exclude() -> None:
    first = random_hex(random.Random(42))
    assert random_hex(random.Random(42)) == first
    assert random_hex(random.Random(42), exclude=[first.lower()]) != first


@pytest.mark.parametrize("value", [0.5, 21.5, MAX_REACH + 0.01, math.nan, math.inf, "3"])
def test_check_min_contrast_rejects(value: float) -> None:
    with pytest.raises(ValueError, match="min_contrast"):
        check_min_contrast(value)
    with pytest.raises(ValueError, match="min_contrast"):
        random_hex(random.Random(0), min_contrast=value)


def test_check_min_contrast_accepts_the_reachable_range() -> None:
    for value in (1, 1.0, DEFAULT_MIN_CONTRAST, 4.5, MAX_REACH):
        check_min_contrast(value)
    assert 7 < MAX_REACH < 21
    with pytest.raises(ValueError, match="min_contrast"):
        check_min_contrast(MAX_REACH, background="#FFFFFF")


# --- next_color ---------------------------------------------------------------------------------------

history_colors = (
    st.sampled_from(NAMES)
    | st.sampled_from(list(NAMED_COLORS.values()))
    | st.builds(lambda v: f"#{v:06X}", st.integers(0, 0xFFFFFF))
)


@settings(deadline=None)
@given(
    st.integers(0, 2**32),
    st.sampled_from(["preset", "hex"]),
    st.lists(history_colors, max_size=8),
    st.integers(0, 5),
)
def test_next_color_never_repeats_the_last_n(seed: int, mode: str, recent: list[str], no_repeat: int) -> None:
    result = next_color(random.Random(seed), mode=mode, recent=recent, no_repeat=no_repeat)  # type: ignore[arg-type]
    banned = {to_hex(c) for c in recent[len(recent) - no_repeat :]} if no_repeat else set()
    assert to_hex(result) not in banned
    if mode == "preset":
        assert result in NAMED_COLORS
    else:
        assert CANONICAL_HEX.fullmatch(result)
        assert contrast_ratio(result, TWITCH_DARK_BACKGROUND) >= DEFAULT_MIN_CONTRAST


def test_next_color_hex_mode_avoids_the_colour_it_would_have_picked() -> None:
    picked = next_color(random.Random(7), mode="hex", recent=[])
    assert next_color(random.Random(7), mode="hex", recent=[picked]) != picked
    assert next_color(random.Random(7), mode="hex", recent=[picked], no_repeat=0) == picked


def test_next_color_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="no_repeat"):
        next_color(random.Random(0), mode="preset", recent=[], no_repeat=-1)
    with pytest.raises(ValueError, match="mode"):
        next_color(random.Random(0), mode="rainbow", recent=[])  # type: ignore[arg-type]


# --- nearest_named ------------------------------------------------------------------------------------


@given(st.integers(0, 0xFFFFFF))
def test_nearest_named_returns_a_named_colour(value: int) -> None:
    assert nearest_named(f"#{value:06X}") in NAMED_COLORS


@pytest.mark.parametrize(("name", "hex_value"), list(NAMED_COLORS.items()))
def test_nearest_named_is_idempotent_on_named_colours(name: str, hex_value: str) -> None:
    assert nearest_named(hex_value) == name
    assert nearest_named(hex_value.lower()) == name
    assert nearest_named(name) == name


@pytest.mark.parametrize(
    ("color", "expected"),
    [
        # Magenta: CIEDE2000 15.85 to hot_pink vs 21.10 to blue_violet. Plain Lab distance (CIE76) would say
        # blue_violet (36.5 vs 60.8) because it over-counts the chroma gap, which CIEDE2000 scales down.
        ("#FF00FF", "hot_pink"),
        ("#800080", "blue_violet"),  # purple: 15.82 vs blue 19.84
        ("#000080", "blue"),  # navy: 16.55 vs blue_violet 22.90
        ("#FFA500", "golden_rod"),  # orange: 8.89 vs chocolate 20.28
        ("#FFC0CB", "hot_pink"),  # pink
        ("navy", "blue"),
    ],
)
def test_nearest_named_examples(color: str, expected: str) -> None:
    assert nearest_named(color) == expected


@pytest.mark.parametrize(
    ("lab1", "lab2", "expected"),
    [  # Sharma, Wu and Dalal (2005) test data, including the hue wrap-around pairs
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0009), 7.1792),
        ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0011), 7.2195),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ],
)
def test_ciede2000_matches_reference_data(
    lab1: tuple[float, float, float], lab2: tuple[float, float, float], expected: float
) -> None:
    assert _ciede2000(lab1, lab2) == pytest.approx(expected, abs=1e-4)
    assert _ciede2000(lab2, lab1) == pytest.approx(expected, abs=1e-4)
