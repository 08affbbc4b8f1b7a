"""Parse, compare and pick Twitch chat colours: pure, every random choice uses a passed-in Random."""

from __future__ import annotations

import colorsys
import functools
import math
import random
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
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

TWITCH_LIGHT_BACKGROUND = "#FFFFFF"
Readability = Literal["dark", "light", "both", "off"]
"""Which chat theme random colours must read well on: the user's own, or both, or no bound at all."""
READABILITIES: tuple[Readability, ...] = ("dark", "light", "both", "off")
THEME_BACKGROUNDS: Mapping[Readability, tuple[str, ...]] = MappingProxyType(
    {
        "dark": (TWITCH_DARK_BACKGROUND,),
        "light": (TWITCH_LIGHT_BACKGROUND,),
        "both": (TWITCH_DARK_BACKGROUND, TWITCH_LIGHT_BACKGROUND),
        "off": (),
    }
)
# Lightness of random hex colours per theme (saturation is SATURATION_BOUNDS everywhere). The same
# min_contrast (default 3:1) is the bound on every theme, for the reason given above: on white, 4.5:1
# would again reject pure red (4.00). light, 0.2-0.5, mirrors dark: 80.9% of the box passes 3:1 on
# #FFFFFF (65.6% at 4.5:1), every hue reaches it, and only hues 24-204 (orange to cyan) lose their
# lightest part. Its reach (17.6 at the darkest blue) exceeds dark's (16.76), so every valid
# min_contrast is reachable there. both needs luminance 0.129-0.30 for 3:1 on #18181B and #FFFFFF
# alike: 37.1% of 0.3-0.6 passes, every hue has such colours, and no colour at all reaches more than
# 4.21:1 on both (luminance 0.20 is the best compromise), so BOTH_MAX_CONTRAST caps the bound there.
THEME_LIGHTNESS: Mapping[Readability, tuple[float, float]] = MappingProxyType(
    {"dark": LIGHTNESS_BOUNDS, "light": (0.2, 0.5), "both": (0.3, 0.6), "off": (0.3, 0.7)}
)
BOTH_MAX_CONTRAST = 4.18
"""The most contrast on both themes that every rainbow hue (at full saturation) reaches; 4.21 is the limit."""
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


def _least_contrast(color: str, backgrounds: Sequence[str]) -> float:
    """The colour's contrast on the worst of these backgrounds; 21 (the most there is) for none."""
    return min((contrast_ratio(color, background) for background in backgrounds), default=21.0)


@functools.lru_cache(maxsize=16)
def _box_grid(backgrounds: tuple[str, ...], lightness: tuple[float, float]) -> tuple[tuple[str, float], ...]:
    """Every colour of an HSL box on a fixed grid with its least contrast: the fallback and the reach."""
    s_lo, s_hi = SATURATION_BOUNDS
    l_lo, l_hi = lightness
    hexes = {
        _hsl_hex(h / 180, s_lo + (s_hi - s_lo) * i / 2, l_lo + (l_hi - l_lo) * j / 10)
        for h in range(180)
        for i in range(3)
        for j in range(11)
    }
    return tuple((c, _least_contrast(c, backgrounds)) for c in sorted(hexes))


def _fallback_grid(background: str) -> tuple[tuple[str, float], ...]:
    """Every in-bounds colour on a fixed grid with its contrast: the deterministic fallback and the reach."""
    return _box_grid((background,), LIGHTNESS_BOUNDS)


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
    return _random_in_box(rng, (to_hex(background),), LIGHTNESS_BOUNDS, min_contrast, exclude)


def _random_in_box(
    rng: random.Random,
    backgrounds: tuple[str, ...],
    lightness: tuple[float, float],
    min_contrast: float,
    exclude: Collection[str],
) -> str:
    """A colour of the HSL box with at least min_contrast on every background, not in exclude."""
    banned = _banned(exclude)
    for _ in range(_RANDOM_TRIES):
        candidate = _hsl_hex(rng.random(), rng.uniform(*SATURATION_BOUNDS), rng.uniform(*lightness))
        if candidate not in banned and _least_contrast(candidate, backgrounds) >= min_contrast:
            return candidate
    # Bounded work: rather than retry forever, pick from the fixed grid, which is non-empty because
    # the callers check min_contrast against the reach measured on it (only near the limit, or on
    # `both`, where 37% of the box passes 3:1, does this happen in practice).
    grid = [c for c, ratio in _box_grid(backgrounds, lightness) if ratio >= min_contrast]
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
    readability: Readability = "dark",
) -> str:
    """The colour to apply after a message: none of the last no_repeat colours of recent (by hex value).

    The random modes only; rainbow and palette carry state, see rainbow_color and next_palette_color.
    ``background`` is the dark theme's colour; other readabilities use THEME_BACKGROUNDS.
    """
    if no_repeat < 0:
        raise ValueError(f"no_repeat must be >= 0, got {no_repeat!r}")
    exclude = list(recent)[-no_repeat:] if no_repeat else []
    if mode == "preset":
        return random_named(rng, exclude=exclude)
    if mode == "hex":
        if check_readability(readability) == "dark":
            return random_hex(rng, background=background, min_contrast=min_contrast, exclude=exclude)
        return random_readable(rng, readability=readability, min_contrast=min_contrast, exclude=exclude)
    raise ValueError(f"mode must be 'preset' or 'hex', got {mode!r}")


# --- readability ---------------------------------------------------------------------------------------


def check_readability(value: object) -> Readability:
    """The value as a Readability, or ValueError naming the choices."""
    for readability in READABILITIES:
        if value == readability:
            return readability
    raise ValueError(f"readability must be one of {', '.join(READABILITIES)}, not {value!r}")


def contrast_bound(readability: Readability, min_contrast: float = DEFAULT_MIN_CONTRAST) -> float:
    """The contrast a generated colour keeps on each of the theme's backgrounds (1: no bound).

    min_contrast itself, except that ``both`` lowers it to BOTH_MAX_CONTRAST (nothing reads better
    on both) and ``off`` has no bound.
    """
    check_min_contrast(min_contrast)
    theme = check_readability(readability)
    if theme == "off":
        return 1.0
    return min(min_contrast, BOTH_MAX_CONTRAST) if theme == "both" else min_contrast


def is_readable(color: str, readability: Readability, min_contrast: float = DEFAULT_MIN_CONTRAST) -> bool:
    """Whether the colour keeps contrast_bound on every background of the theme."""
    bound = contrast_bound(readability, min_contrast)
    return _least_contrast(to_hex(color), THEME_BACKGROUNDS[readability]) >= bound


def random_readable(
    rng: random.Random,
    *,
    readability: Readability,
    min_contrast: float = DEFAULT_MIN_CONTRAST,
    exclude: Collection[str] = (),
) -> str:
    """A vivid '#RRGGBB' for the theme: its THEME_LIGHTNESS box, meeting contrast_bound, not in exclude."""
    bound = contrast_bound(readability, min_contrast)
    if readability == "dark":
        return random_hex(rng, min_contrast=bound, exclude=exclude)
    return _random_in_box(rng, THEME_BACKGROUNDS[readability], THEME_LIGHTNESS[readability], bound, exclude)


# --- rainbow -------------------------------------------------------------------------------------------

DEFAULT_RAINBOW_STEP = 30
"""Degrees of hue between successive rainbow colours: twelve colours round the wheel."""
_LIGHTNESS_STEPS = 1024  # fine enough that every 8-bit level of every channel is reachable


def check_rainbow_step(step: object) -> int:
    """A rainbow step is a whole number of degrees from 1 to 359 (0 or 360 would never move)."""
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= 359:
        raise ValueError(f"rainbow_step must be a whole number of degrees from 1 to 359, not {step!r}")
    return step


def next_rainbow_hue(hue: int | None, step: int) -> int:
    """The hue (degrees, 0-359) after ``hue``, ``step`` degrees on; a rainbow not begun starts at red (0)."""
    check_rainbow_step(step)
    return 0 if hue is None else (hue + step) % 360


def rainbow_color(
    hue: int, *, readability: Readability = "dark", min_contrast: float = DEFAULT_MIN_CONTRAST
) -> str:
    """The '#RRGGBB' of ``hue`` at full saturation, readable on the theme, keeping the hue.

    The pure hue (lightness 0.5) when it meets contrast_bound; otherwise the least lightening (it
    is too dark for the dark theme) or darkening (too light for the light theme) that does. On
    lightness, luminance only grows, so each bound is met from one end: white reads 17.7:1 on the
    dark theme and black 21:1 on the light one, past any valid min_contrast, and for ``both`` the
    bound is at most BOTH_MAX_CONTRAST, which every whole hue reaches.
    """
    if isinstance(hue, bool) or not isinstance(hue, int) or not 0 <= hue < 360:
        raise ValueError(f"hue must be a whole number of degrees from 0 to 359, not {hue!r}")
    bound = contrast_bound(readability, min_contrast)
    half = _LIGHTNESS_STEPS // 2

    def at(step: int) -> str:
        return _hsl_hex(hue / 360, 1.0, step / _LIGHTNESS_STEPS)

    def reads_on(background: str, step: int) -> bool:
        return contrast_ratio(at(step), background) >= bound

    step = half
    if readability in ("dark", "both") and not reads_on(TWITCH_DARK_BACKGROUND, step):
        step = _first(range(half, _LIGHTNESS_STEPS + 1), lambda s: reads_on(TWITCH_DARK_BACKGROUND, s))
    elif readability in ("light", "both") and not reads_on(TWITCH_LIGHT_BACKGROUND, step):
        darker = range(half, -1, -1)
        step = _first(darker, lambda s: reads_on(TWITCH_LIGHT_BACKGROUND, s))
    return at(step)


def _first(steps: range, ok: Callable[[int], bool]) -> int:
    """The first of ``steps`` where ``ok`` holds, by bisection: ok is monotone and holds at the end."""
    lo, hi = 0, len(steps) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(steps[mid]):
            hi = mid
        else:
            lo = mid + 1
    return steps[lo]


# --- palette -------------------------------------------------------------------------------------------

PaletteOrder = Literal["cycle", "shuffle"]
PALETTE_ORDERS: tuple[PaletteOrder, ...] = ("cycle", "shuffle")
MAX_PALETTE = 32
"""Colours one palette may hold: plenty for a theme, and short enough to type in chat or a shell."""


class PaletteError(ValueError):
    """A palette that cannot be used; the message names the bad entry by its position (from 1)."""


def parse_palette(entries: str | Sequence[str]) -> tuple[str, ...]:
    """Each entry through parse_color ('red', '#9146FF', 'blue violet'); a string is split at commas.

    An empty or blank string is the empty palette. 'random' is refused: a palette lists colours.
    """
    if isinstance(entries, str):
        entries = entries.split(",") if entries.strip() else []
    if len(entries) > MAX_PALETTE:
        raise PaletteError(f"a palette holds at most {MAX_PALETTE} colours, not {len(entries)}")
    palette: list[str] = []
    for position, entry in enumerate(entries, start=1):
        try:
            color = parse_color(entry)
        except ColorError as error:
            raise PaletteError(f"palette entry {position}: {error}") from None
        if color == RANDOM:
            raise PaletteError(f"palette entry {position}: 'random' is not a colour a palette can hold")
        palette.append(color)
    return tuple(palette)


@dataclass(frozen=True, slots=True)
class PalettePick:
    """The palette colour to apply, and where the palette stands once it is applied."""

    color: str
    position: int
    """cycle: the index of the colour after this one."""
    remaining: tuple[int, ...]
    """shuffle: indices of the entries this round has not used yet (empty: a new round is next)."""


def next_palette_color(
    rng: random.Random,
    palette: Sequence[str],
    *,
    order: PaletteOrder,
    position: int = 0,
    remaining: Sequence[int] = (),
    recent: Sequence[str] = (),
    no_repeat: int = 1,
) -> PalettePick:
    """The next colour of the user's own palette.

    ``cycle`` walks the palette in order, ``position`` being the index of the next entry; no_repeat
    does not apply, the order is the user's. ``shuffle`` uses every entry once per round, in random
    order (``remaining`` are the entries this round has left; stale or out-of-range ones are
    dropped); among those left it prefers one that is not one of the last no_repeat colours of
    recent (forgetting the oldest of them when none is), so a new round does not open with the
    colour the last one ended on.
    """
    if not palette:
        raise PaletteError("the palette is empty")
    if order == "cycle":
        index = position % len(palette) if position >= 0 else 0
        return PalettePick(palette[index], (index + 1) % len(palette), ())
    if order != "shuffle":
        raise ValueError(f"palette order must be one of {', '.join(PALETTE_ORDERS)}, not {order!r}")
    if no_repeat < 0:
        raise ValueError(f"no_repeat must be >= 0, got {no_repeat!r}")
    left = [i for i in dict.fromkeys(remaining) if isinstance(i, int) and 0 <= i < len(palette)]
    if not left:
        left = list(range(len(palette)))
    banned = _banned(list(recent)[-no_repeat:] if no_repeat else [])
    allowed = next(
        allowed
        for start in range(len(banned) + 1)  # the last try bans nothing, so some entry is allowed
        if (allowed := [i for i in left if to_hex(palette[i]) not in banned[start:]])
    )
    index = rng.choice(allowed)
    return PalettePick(palette[index], 0, tuple(i for i in left if i != index))
