"""Every place this package leans on twitchio internals or works around one of its traps.

Kept in one file so an upgrade of twitchio is checked here, and each trap has a test that shows
it (``tests/test_twitchio_traps.py``):

* ``commands.Bot.event_message`` returns early for the bot's own messages, so twitchio commands
  never run for the account itself. The component therefore reads chat in a component listener
  (``Client.dispatch`` still delivers own messages there) and parses its commands itself,
  accepting the host bot's prefixes as read by :func:`command_prefixes`.
* A Component's listeners and commands are stored on its CLASS when an instance is created, so two
  bots in one process holding instances of one class end up calling the last instance created.
  :func:`isolated_component_class` gives each instance a class of its own.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import twitchio
    from twitchio.ext import commands

T = TypeVar("T", bound=type)

_ISOLATED = "__colorchanger_isolated__"


def isolated_component_class(cls: T) -> T:
    """Return a fresh subclass of ``cls`` so twitchio's class-level listener table is per instance."""
    if cls.__dict__.get(_ISOLATED, False):
        return cls
    return type(
        cls.__name__,
        (cls,),
        {_ISOLATED: True, "__module__": cls.__module__, "__qualname__": cls.__qualname__},
    )  # type: ignore[return-value]  # type() is typed as returning plain `type`


async def command_prefixes(bot: commands.Bot, message: twitchio.ChatMessage) -> list[str]:
    """The host bot's command prefixes for ``message``: twitchio keeps them only privately."""
    assigned: Any = getattr(bot, "_get_prefix", None)
    if assigned is None:
        return []
    if callable(assigned):
        assigned = assigned(bot, message)
        if inspect.isawaitable(assigned):
            assigned = await assigned
    if isinstance(assigned, str):
        return [assigned]
    if isinstance(assigned, Iterable):
        return [p for p in assigned if isinstance(p, str)]
    return []
