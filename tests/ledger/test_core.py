"""The ledger's bookkeeping: lots, spends and expiry on the way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from maxloyalty.ledger.errors import InsufficientPoints
from maxloyalty.runtime import Runtime
from tests.ledger.conftest import Shop, assert_ledger_consistent, post_at


async def test_expired_points_cannot_be_spent_before_the_job_runs(
    make_shop: Any, runtime: Runtime
) -> None:
    shop: Shop = await make_shop(expiry_days=10)
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    await post_at(runtime, shop, start, {"type": "SALE", "amount": 200_000})  # +100
    late = start + timedelta(days=12)  # the lot has expired; no daily job has run
    with pytest.raises(InsufficientPoints):
        await post_at(runtime, shop, late, {"type": "REDEMPTION", "amount": 200_000, "points": 50})
    await post_at(runtime, shop, late, {"type": "SALE", "amount": 20_000})
    assert (await shop.balance())["balance"] == 10  # the expiry was booked on the way
    await assert_ledger_consistent(runtime, shop)
