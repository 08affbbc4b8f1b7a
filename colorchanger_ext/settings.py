"""The component's settings: one frozen value built once and passed down explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .colors import DEFAULT_MIN_CONTRAST, check_min_contrast

ColorMode = Literal["preset", "hex"]
HexPolicy = Literal["auto", "always", "never"]

COLOR_MODES: tuple[ColorMode, ...] = ("preset", "hex")
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
    seen_messages: int = 2048
    """How many message ids are remembered to drop redelivered and shared-chat copies."""

    def __post_init__(self) -> None:
        if self.mode not in COLOR_MODES:
            raise ValueError(f"mode must be one of {', '.join(COLOR_MODES)}, not {self.mode!r}")
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
