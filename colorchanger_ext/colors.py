"""Parse, compare and pick Twitch chat colours: pure, every random choice uses a passed-in Random."""

from __future__ import annotations

import colorsys
import functools
import math
import random
import re
from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType
from typing import Literal

import colour

TWITCH_DARK_BACKGROUND = "#18181B"
RANDOM = "random"
NAMED_COLORS: Mapping[str, str] = MappingProxyType(
    {
        "blue": "#0000FF",
        "blue_violet": "#8A2BE2",
        "cadet_blue": "#5F9EA0",
        "chocolate": "#D2691E",
        "coral": "#FF7F50",
        "dodger_blue": "#1E90FF",
        "firebrick": "#B22222",
        "golden_rod": "#DAA520",
        "green": "#008000",
        "hot_pink": "#FF69B4",
        "orange_red": "#FF4500",
        "red": "#FF0000",
        "sea_green": "#2E8B57",
        "spring_green": "#00FF7F",
        "yellow_green": "#9ACD32",
    }
)

# WCAG's 3:1 (large/bold text and UI components). Against #18181B, 4.5:1 rejects even pure red #FF0000
# (4.43) and 28% of fully saturated hues (s=1, l=0.5); 3:1 rejects 14%. Over the whole HSL box below
# (21x26 grid per degree of hue) 95.9% of colours pass 3:1 against 83.8% for 4.5:1, 84.4% of hues pass
# everywhere in the box (52.8% at 4.5:1) and only hues 222-277 (blue/violet) lose their darkest corner.
DEFAULT_MIN_CONTRAST = 3.0
# Saturation >= 0.6 keeps colours vivid (below that they read as greys on a dark UI); lightness 0.5-0.75
# runs from the pure hue to a light tint without washing out into white or sinking into the background.
SATURATION_BOUNDS = (0.6, 1.0)
LIGHTNESS_BOUNDS = (0.5, 0.75)
_RANDOM_TRIES = 32  # at the default contrast ~96% of samples pass, so the fallback is rare
_MAX_INPUT_LEN = 64  # longer than any colour spelling; checked before anything else touches the text
_HEX_RE = re.compile(r"#?([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})")
_CANONICAL_HEX_RE = re.compile(r"#[0-9A-Fa-f]{6}")
_NAME_RE = re.compile(r"[A-Za-z]+(?:[ _-]+[A-Za-z]+)*")
_COMPACT_NAMES = {name.replace("_", ""): name for name in NAMED_COLORS}


class ColorError(ValueError):
    """A string that is not a colour; the message is ASCII-escaped and short so it is safe to log."""

    def __init__(self, text: object) -> None:
        shown = ascii(text[:40] if isinstance(text, str) else text)
        super().__init__(f"not a colour: {shown if len(shown) <= 40 else shown[:37] + '...'}")


def parse_color(text: str) -> str:
    """Returns a Twitch named colour ('blue_violet'), '#RRGGBB' (upper case), or RANDOM."""
    # isascii() before anything else: lower()/strip() map some non-ASCII look-alikes (Kelvin sign K) to ASCII.
    if not isinstance(text, str) or len(text) > _MAX_INPUT_LEN or not text.isascii():
        raise ColorError(text)
    stripped = text.strip(" \t\r\n")
    if _HEX_RE.fullmatch(stripped):
        digits = stripped.lstrip("#").upper()
        return "#" + (digits if len(digits) == 6 else "".join(d * 2 for d in digits))
    if not _NAME_RE.fullmatch(stripped):
        raise ColorError(text)
    key = re.sub(r"[ _-]", "", stripped).lower()
    if key == RANDOM:
        return RANDOM
    if key in _COMPACT_NAMES:  # Twitch's own names win over CSS names spelt with the same letters
        return _COMPACT_NAMES[key]
    try:
        return str(colour.web2hex(key, force_long=True)).upper()
    except (ValueError, AttributeError):  # colour: ValueError for unknown names, AttributeError for bad hex
        raise ColorError(text) from None


def to_hex(color: str) -> str:
    """'#RRGGBB' for anything parse_color accepts except RANDOM, so colours can be compared by value."""
    parsed = parse_color(color)
    if parsed == RANDOM:
        raise ColorError(color)
    return NAMED_COLORS.get(parsed, parsed)


def is_hex(color: str) -> bool:
    """True for '#RRGGBB' (either case): only Turbo/Prime accounts may set such a colour."""
    return isinstance(color, str) and _CANONICAL_HEX_RE.fullmatch(color) is not None


def _rgb(hex_color: str) -> tuple[float, float, float]:
    return (int(hex_color[1:3], 16) / 255, int(hex_color[3:5], 16) / 255, int(hex_color[5:7], 16) / 255)


def _linear(channel: float) -> float:
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4


def _luminance(hex_color: str) -> float:
    r, g, b = (_linear(c) for c in _rgb(hex_color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2.x contrast (1 to 21) of two colours, the measure of whether chat text stays readable."""
    la, lb = _luminance(to_hex(a)), _luminance(to_hex(b))
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def _hsl_hex(hue: float, saturation: float, lightness: float) -> str:
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return "#" + "".join(f"{round(c * 255):02X}" for c in (r, g, b))


@functools.lru_cache(maxsize=8)
def _fallback_grid(background: str) -> tuple[tuple[str, float], ...]:
    """Every in-bounds colour on a fixed grid with its contrast: the deterministic fallback and the reach."""
    s_lo, s_hi = SATURATION_BOUNDS
    l_lo, l_hi = LIGHTNESS_BOUNDS
    hexes = {
        _hsl_hex(h / 180, s_lo + (s_hi - s_lo) * i / 2, l_lo + (l_hi - l_lo) * j / 10)
        for h in range(180)
        for i in range(3)
        for j in range(11)
    }
    return tuple((c, contrast_ratio(c, background)) for c in sorted(hexes))


def max_reachable_contrast(background: str = TWITCH_DARK_BACKGROUND) -> float:
    """Highest min_contrast random_hex can always satisfy on this background with the HSL bounds."""
    return max(ratio for _, ratio in _fallback_grid(to_hex(background)))


def check_min_contrast(value: float, background: str = TWITCH_DARK_BACKGROUND) -> None:
    """Raises ValueError for a min_contrast random_hex cannot meet, so settings reject it at load time."""
    reach = max_reachable_contrast(background)
    if not isinstance(value, int | float) or not 1.0 <= value <= reach:  # also rejects NaN
        raise ValueError(f"min_contrast must be between 1 and {reach:.2f} on {background}, got {value!r}")


def _banned(exclude: Collection[str]) -> list[str]:
    """Hex values of exclude, oldest first; unparseable entries (old history) cannot clash, so skip them."""
    hexes = []
    for item in exclude:
        try:
            hexes.append(to_hex(item))
        except ColorError:
            continue
    return hexes


def _choose(rng: random.Random, candidates: Sequence[str], banned: list[str]) -> str:
    """Pick a candidate not in banned, forgetting the oldest bans until one is left."""
    for start in range(len(banned) + 1):
        allowed = [c for c in candidates if NAMED_COLORS.get(c, c) not in banned[start:]]
        if allowed:
            return rng.choice(allowed)
    raise ValueError("no candidate colours")


def random_named(rng: random.Random, *, exclude: Collection[str] = ()) -> str:
    """A named colour (any account may use one) not in exclude, dropping its oldest entries if needed."""
    return _choose(rng, list(NAMED_COLORS), _banned(exclude))


def random_hex(
    rng: random.Random,
    *,
    background: str = TWITCH_DARK_BACKGROUND,
    min_contrast: float = DEFAULT_MIN_CONTRAST,
    exclude: Collection[str] = (),
) -> str:
    """A vivid '#RRGGBB' readable on background, in bounded time, not in exclude (oldest dropped first)."""
    check_min_contrast(min_contrast, background)
    banned = _banned(exclude)
    for _ in range(_RANDOM_TRIES):
        candidate = _hsl_hex(rng.random(), rng.uniform(*SATURATION_BOUNDS), rng.uniform(*LIGHTNESS_BOUNDS))
        if candidate not in banned and contrast_ratio(candidate, background) >= min_contrast:
            return candidate
    # Bounded work: rather than retry forever, pick from the fixed grid, which is non-empty because
    # check_min_contrast measured the reach on it (only near the limit does this happen in practice).
    grid = [c for c, ratio in _fallback_grid(to_hex(background)) if ratio >= min_contrast]
    return _choose(rng, grid, banned)


def _lab(hex_color: str) -> tuple[float, float, float]:
    """CIELAB (D65) of an sRGB colour, where distances roughly match what people see."""
    r, g, b = (_linear(c) for c in _rgb(hex_color))
    xyz = (
        (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047,
        0.2126729 * r + 0.7151522 * g + 0.0721750 * b,
        (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883,
    )
    fx, fy, fz = (t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29 for t in xyz)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def _ciede2000(lab1: tuple[float, float, float], lab2: tuple[float, float, float]) -> float:
    """CIEDE2000 colour difference (Sharma, Wu and Dalal 2005), kL = kC = kH = 1."""
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    c_bar = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_bar**7 / (c_bar**7 + 25**7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360 if c1p else 0.0
    h2p = math.degrees(math.atan2(b2, a2p)) % 360 if c2p else 0.0
    dh = h2p - h1p if abs(h2p - h1p) <= 180 else h2p - h1p - math.copysign(360, h2p - h1p)
    dh = dh if c1p * c2p else 0.0
    d_l, d_c, d_h = l2 - l1, c2p - c1p, 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh / 2))
    l_bar, cp_bar = (l1 + l2) / 2, (c1p + c2p) / 2
    h_bar = h1p + h2p if not c1p * c2p else (h1p + h2p) / 2 + (180 if abs(h1p - h2p) > 180 else 0)
    h_bar %= 360
    t = (
        1
        - 0.17 * math.cos(math.radians(h_bar - 30))
        + 0.24 * math.cos(math.radians(2 * h_bar))
        + 0.32 * math.cos(math.radians(3 * h_bar + 6))
        - 0.20 * math.cos(math.radians(4 * h_bar - 63))
    )
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / math.sqrt(20 + (l_bar - 50) ** 2)
    s_c, s_h = 1 + 0.045 * cp_bar, 1 + 0.015 * cp_bar * t
    r_t = (
        -2
        * math.sqrt(cp_bar**7 / (cp_bar**7 + 25**7))
        * math.sin(math.radians(60 * math.exp(-(((h_bar - 275) / 25) ** 2))))
    )
    return math.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + r_t * (d_c / s_c) * (d_h / s_h))


def nearest_named(color: str) -> str:
    """The named colour that looks closest (CIEDE2000), for accounts that cannot use hex colours."""
    if color in NAMED_COLORS:
        return color
    target = _lab(to_hex(color))
    return min(NAMED_COLORS, key=lambda name: _ciede2000(target, _lab(NAMED_COLORS[name])))


def next_color(
    rng: random.Random,
    *,
    mode: Literal["preset", "hex"],
    recent: Sequence[str],
    no_repeat: int = 1,
    min_contrast: float = DEFAULT_MIN_CONTRAST,
    background: str = TWITCH_DARK_BACKGROUND,
) -> str:
    """The colour to apply after a message: none of the last no_repeat colours of recent (by hex value)."""
    if no_repeat < 0:
        raise ValueError(f"no_repeat must be >= 0, got {no_repeat!r}")
    exclude = list(recent)[-no_repeat:] if no_repeat else []
    if mode == "preset":
        return random_named(rng, exclude=exclude)
    if mode == "hex":
        return random_hex(rng, background=background, min_contrast=min_contrast, exclude=exclude)
    raise ValueError(f"mode must be 'preset' or 'hex', got {mode!r}")
