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


def test_ids_carry_their_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    made = ids.uuid7()
    # Later than anything made before (the previous test's ids may lie in the future).
    assert made.int >> 80 >= before
