"""A small process-local memo with a short time to live, for facts every request asks
(is this credential still good?) that must never be stale for longer than that."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Stamp:
    """When a fact was read, and the memo's generation then (see `Memo.put`)."""

    generation: int
    at: float


class Memo(Generic[T]):
    def __init__(self, ttl_seconds: float, max_items: int = 50_000) -> None:
        self.ttl_seconds = ttl_seconds
        self._items: dict[str, tuple[float, T]] = {}
        self._max_items = max_items
        self._generation = 0

    def get(self, key: str) -> T | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self._items[key]
            return None
        return item[1]

    def stamp(self) -> Stamp:
        """Take before reading the fact that will be `put`."""
        return Stamp(self._generation, time.monotonic())

    def put(self, key: str, value: T, stamp: Stamp) -> None:
        """Remember `value` until `ttl_seconds` after it was read; not at all if the memo was
        cleared meanwhile (the value may predate what cleared it)."""
        if stamp.generation != self._generation:
            return
        if len(self._items) >= self._max_items:
            self._items.clear()  # mostly expired by then; cheaper than sweeping
        self._items[key] = (stamp.at + self.ttl_seconds, value)

    def clear(self) -> None:
        self._generation += 1
        self._items.clear()
