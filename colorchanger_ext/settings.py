"""The component's settings: one frozen value built once and passed down explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .colors import (
    DEFAULT_MIN_CONTRAST,
    DEFAULT_RAINBOW_STEP,
    Readability,
    check_min_contrast,
    check_rainbow_step,
    check_readability,
)

ColorMode = Literal["preset", "hex", "rainbow", "palette"]
HexPolicy = Literal["auto", "always", "never"]

COLOR_MODES: tuple[ColorMode, ...] = ("preset", "hex", "rainbow", "palette")
"""preset: a random named colour; hex: a random readable hex colour; rainbow: hue steps round the
wheel; palette: the user's own colours, in order or shuffled (needs a per-user palette)."""
HEX_POLICIES: tuple[HexPolicy, ...] = ("auto", "always", "never")

DEFAULT_DATABASE = Path("colorchanger.sqlite3")
"""Relative to the working directory, like twitchio's own token file, unless overridden."""

DATABASE_ENV = "COLORCHANGER_DATABASE"


def default_database() -> Path:
    """Where ``load_module`` keeps state when the host bot says nothing: env var, else the cwd."""
    return Path(os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE)


@dataclass(frozen=True, slots=True)
class ColorSettings:
    """Defaults for new users and the rules every colour change follows."""

    database: Path = field(default_factory=default_database)
    mode: ColorMode = "preset"
    hex_policy: HexPolicy = "auto"
    no_repeat: int = 1
    """Never reuse any of this many most recent colours."""
    min_contrast: float = DEFAULT_MIN_CONTRAST
    """WCAG contrast every random hex colour keeps against Twitch's dark chat."""
    hex_retry_after: float = 24 * 3600.0
    """Seconds before ``auto`` tries hex again on an account Twitch refused it for (it may gain Prime)."""
    seen_messages: int = 128
    """How many of the account's own message ids are remembered to drop redelivered and shared-chat
    copies. Copies arrive within seconds, and 128 own messages is minutes of chat; each id costs
    about 200 bytes, which at 2048 made 0.4 MB per user (400 MB for a thousand users)."""
    readability: Readability = "dark"
    """For new users: the chat theme random colours must read well on (dark, light, both, off)."""
    rainbow_step: int = DEFAULT_RAINBOW_STEP
    """For new users: degrees of hue between rainbow colours (1 to 359)."""

    def __post_init__(self) -> None:
        if self.mode not in COLOR_MODES:
            raise ValueError(f"mode must be one of {', '.join(COLOR_MODES)}, not {self.mode!r}")
        if self.mode == "palette":
            raise ValueError(
                "mode cannot be palette for every user: a palette is one user's own "
                "(colorchanger-runner users set LOGIN --palette ... --mode palette)"
            )
        if self.hex_policy not in HEX_POLICIES:
            raise ValueError(f"hex_policy must be one of {', '.join(HEX_POLICIES)}, not {self.hex_policy!r}")
        if not 0 <= self.no_repeat <= 14:
            raise ValueError(
                f"no_repeat must be between 0 and 14 (there are 15 named colours), not {self.no_repeat}"
            )
        check_min_contrast(self.min_contrast)
        if self.hex_retry_after < 0:
            raise ValueError(f"hex_retry_after must not be negative, not {self.hex_retry_after}")
        if self.seen_messages < 1:
            raise ValueError(f"seen_messages must be at least 1, not {self.seen_messages}")
        check_readability(self.readability)
        check_rainbow_step(self.rainbow_step)
