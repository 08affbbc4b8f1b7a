"""A hook for watching colour changes from outside, without the component knowing who watches.

The runner passes a Prometheus implementation (``bot_runner.metrics``); a host bot can pass its
own. Every method is called on the event loop, synchronously, at the point the thing happened, so
an implementation must be quick and must not raise.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["ChangeObserver", "NullObserver"]


@runtime_checkable
class ChangeObserver(Protocol):
    """Told about each own message, each colour change and each failed Helix colour request."""

    def message_seen(self, user_id: str) -> None:
        """The account sent a chat message (counted once, duplicates and shared-chat copies dropped)."""

    def color_changed(self, user_id: str, seconds: float) -> None:
        """A colour PUT was answered with success; ``seconds`` since the message that asked for it arrived."""

    def helix_error(self, user_id: str, status: int | None) -> None:
        """A colour PUT failed: Twitch's HTTP status, or None when there was no answer (timeout, network)."""


class NullObserver:
    """Watches nothing: the default."""

    def message_seen(self, user_id: str) -> None:
        pass

    def color_changed(self, user_id: str, seconds: float) -> None:
        pass

    def helix_error(self, user_id: str, status: int | None) -> None:
        pass
