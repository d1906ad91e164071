"""A small process-local memo with a short time to live, for facts every request asks
(is this credential still good?) that must never be stale for longer than that."""

from __future__ import annotations

import time
from typing import Generic, TypeVar

T = TypeVar("T")


class Memo(Generic[T]):
    def __init__(self, ttl_seconds: float, max_items: int = 50_000) -> None:
        self.ttl_seconds = ttl_seconds
        self._items: dict[str, tuple[float, T]] = {}
        self._max_items = max_items

    def get(self, key: str) -> T | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self._items[key]
            return None
        return item[1]

    def put(self, key: str, value: T) -> None:
        if len(self._items) >= self._max_items:
            self._items.pop(next(iter(self._items)))  # oldest insertion goes first
        self._items[key] = (time.monotonic() + self.ttl_seconds, value)

    def clear(self) -> None:
        self._items.clear()
