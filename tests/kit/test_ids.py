"""Ids made in one process sort in the order they were made, within a millisecond too."""

from __future__ import annotations

import time
import uuid

import pytest

from maxloyalty.kit import ids


def test_ids_increase_strictly_on_a_stopped_or_stepped_back_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [time.time_ns()]
    monkeypatch.setattr(ids.time, "time_ns", lambda: now[0])
    made = [ids.uuid7() for _ in range(5000)]
    now[0] -= 10_000_000_000  # NTP stepped the clock back ten seconds
    made += [ids.uuid7() for _ in range(5000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert {(u.version, u.variant) for u in made} == {(7, uuid.RFC_4122)}


def test_a_millisecond_run_out_of_ids_borrows_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    now_ms = time.time_ns() // 1_000_000
    monkeypatch.setattr(ids.time, "time_ns", lambda: now_ms * 1_000_000)
    monkeypatch.setattr(ids, "_last", (now_ms, (1 << 74) - 2))
    last = ids._compose(now_ms, (1 << 74) - 2)
    made = ids.uuid7()
    assert made > last
    assert made.int >> 80 == now_ms + 1
    assert (made.version, made.variant) == (7, uuid.RFC_4122)
