"""The chat command rule: which messages are ``cce``, ``ccd``, ``ccc <colour>`` or ``ccm <mode>``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Chatterino and other clients append an invisible tag character (or zero-width space) to a
# repeated message to dodge Twitch's duplicate filter: "ccd" sent twice must still be "ccd".
_INVISIBLE = re.compile("[\u200b-\u200d\u2060\ufeff\U000e0000-\U000e007f]")


@dataclass(frozen=True, slots=True)
class Enable:
    """``cce``: turn colour changes on."""


@dataclass(frozen=True, slots=True)
class Disable:
    """``ccd``: turn colour changes off."""


@dataclass(frozen=True, slots=True)
class SetColor:
    """``ccc <colour>``: set one colour now; ``argument`` is unparsed (may be empty)."""

    argument: str


@dataclass(frozen=True, slots=True)
class SetMode:
    """``ccm <mode>``: switch colour mode; ``argument`` is unparsed (may be empty or unknown)."""

    argument: str


ChatCommand = Enable | Disable | SetColor | SetMode


def parse_command(text: str, prefixes: Iterable[str] = ()) -> ChatCommand | None:
    """Return the command a chat message is, or None when it is ordinary chat.

    A command is the exact word, bare or right after one of the host bot's prefixes, in any case:
    ``cccombo`` and ``ccd please`` are chat, ``!CCC red`` is a command.
    """
    cleaned = _INVISIBLE.sub("", text).strip()
    for prefix in sorted((p for p in prefixes if p), key=len, reverse=True):
        if cleaned.startswith(prefix):
            cleaned = cleaned[len(prefix) :]
            break
    parts = cleaned.split(maxsplit=1)
    word = parts[0].lower() if parts else ""
    rest = parts[1].strip() if len(parts) > 1 else ""
    if word == "ccc":
        return SetColor(rest)
    if word == "ccm":
        return SetMode(rest)
    if rest:
        return None
    if word == "cce":
        return Enable()
    if word == "ccd":
        return Disable()
    return None
