"""The twitchio traps named in twitchio_compat, each shown, and our workaround shown to hold."""

from __future__ import annotations

from typing import Any

import twitchio
from twitchio.ext import commands

from colorchanger_ext.twitchio_compat import isolated_component_class


class Counter(commands.Component):
    """A component with per-instance state, the way any real component has."""

    def __init__(self, label: str) -> None:
        self.label = label

    @commands.Component.listener("message")
    async def event_message(self, message: twitchio.ChatMessage) -> None:
        pass


def bound_instance(component: Any) -> Any:
    """The instance twitchio will call the listener on, as a bot reads it when the component is added."""
    (listener,) = component.__all_listeners__["event_message"]
    return listener.args[0]


def test_trap_listeners_live_on_the_class() -> None:
    first = Counter("first")
    second = Counter("second")
    # twitchio stores the bound listeners on the class: the first bot would call the second instance.
    assert bound_instance(first) is second


def test_isolated_class_keeps_each_instance_its_own_listeners() -> None:
    first = isolated_component_class(Counter)("first")
    second = isolated_component_class(Counter)("second")
    assert bound_instance(first) is first
    assert bound_instance(second) is second
    assert isinstance(first, Counter)
    assert type(first).__name__ == "Counter"


def test_isolating_an_isolated_class_is_a_no_op() -> None:
    isolated = isolated_component_class(Counter)
    assert isolated_component_class(isolated) is isolated
