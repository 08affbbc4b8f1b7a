"""Change a Twitch account's chat colour after every message it sends (a twitchio 3 component).

``await bot.load_module("colorchanger_ext")`` adds it with default settings; for control, add
``ColorChanger(bot, store=..., settings=...)`` yourself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .component import ColorChanger
from .observer import ChangeObserver, NullObserver
from .settings import ColorSettings
from .store import Store

if TYPE_CHECKING:
    from twitchio.ext import commands

__all__ = ["ChangeObserver", "ColorChanger", "ColorSettings", "NullObserver", "Store", "setup"]


async def setup(bot: commands.Bot) -> None:
    """Entry point for ``bot.load_module("colorchanger_ext")``."""
    await bot.add_component(ColorChanger(bot))
