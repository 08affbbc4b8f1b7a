"""Bounded memory of message ids, so a redelivered or shared-chat copy changes nothing twice."""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    """Remembers the last ``size`` ids; older ones fall out so memory stays flat for months."""

    __slots__ = ("_ids", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """Record ``key``; False when it was already among the recent ones."""
        if key in self._ids:
            self._ids.move_to_end(key)
            return False
        self._ids[key] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)
