"""The chat command rule."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colorchanger_ext.commands import Disable, Enable, SetColor, SetMode, parse_command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cce", Enable()),
        ("CCD", Disable()),
        ("  ccd  ", Disable()),
        ("ccc red", SetColor("red")),
        ("ccc sea green", SetColor("sea green")),
        ("Ccc   #FF00FF ", SetColor("#FF00FF")),
        ("ccc", SetColor("")),
        ("ccc\tblue", SetColor("blue")),
        ("!ccc red", SetColor("red")),
        ("!cce", Enable()),
        ("ccm rainbow", SetMode("rainbow")),
        ("!CCM Palette", SetMode("Palette")),  # the component compares modes in any case
        ("ccm", SetMode("")),
        ("ccm disco ball", SetMode("disco ball")),  # an unknown mode, answered, not chat
        # Chatterino's duplicate-bypass character and zero-width spaces are not part of the word.
        ("ccd \U000e0000", Disable()),
        ("cc\u200bd", Disable()),
    ],
)
def test_commands_are_recognised(text: str, expected: object) -> None:
    assert parse_command(text, ["!"]) == expected


@pytest.mark.parametrize(
    "text",
    [
        "cccombo",
        "ccd please",
        "cce now",
        "hello ccd",
        "",
        "   ",
        "!",
        "cc",
        "ccdd",
        "?ccd extra",
        "ccx red",
        "ccmode hex",
        "hi ccm hex",
    ],
)
def test_chat_is_not_a_command(text: str) -> None:
    assert parse_command(text, ["!", "?"]) is None


def test_prefix_is_optional_and_only_the_host_prefixes_count() -> None:
    assert parse_command("ccd", ["!"]) == Disable()
    assert parse_command("?ccd", ["!"]) is None
    assert parse_command("bot, ccd", ["bot, "]) == Disable()
    # The longest matching prefix wins, so "!!" prefixed commands are not read as "!" + "!ccd".
    assert parse_command("!!ccd", ["!", "!!"]) == Disable()


@given(st.text(max_size=200))
def test_any_text_parses_without_error(text: str) -> None:
    result = parse_command(text, ["!"])
    assert result is None or isinstance(result, Enable | Disable | SetColor | SetMode)


@given(st.text(alphabet=string.ascii_letters + string.digits + "#_- ", max_size=50))
def test_ccc_keeps_its_whole_argument(argument: str) -> None:
    assert parse_command("ccc " + argument) == SetColor(argument.strip())


@given(st.text(alphabet=string.ascii_letters + string.digits + "#_- ", max_size=50))
def test_ccm_keeps_its_whole_argument(argument: str) -> None:
    assert parse_command("ccm " + argument) == SetMode(argument.strip())
