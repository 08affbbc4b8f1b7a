"""Bounded memory of message ids."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from colorchanger_ext.dedup import RecentIds


def test_repeat_is_reported_once() -> None:
    seen = RecentIds(3)
    assert seen.add("a") is True
    assert seen.add("a") is False


def test_memory_is_bounded_and_oldest_forgotten_first() -> None:
    seen = RecentIds(2)
    for key in "abc":
        seen.add(key)
    assert len(seen) == 2
    assert seen.add("a") is True  # forgotten
    assert seen.add("c") is False


@given(st.lists(st.text(max_size=3), max_size=100), st.integers(min_value=1, max_value=10))
def test_never_grows_past_its_size(keys: list[str], size: int) -> None:
    seen = RecentIds(size)
    for key in keys:
        seen.add(key)
        assert len(seen) <= size
