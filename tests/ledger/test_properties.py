"""Property: whatever sequence of operations happens to a card, in whatever timing, the
ledger's invariants hold after every step and the balance never goes negative."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maxloyalty.kit.errors import AppError
from maxloyalty.ledger.service.daily import run_daily
from maxloyalty.runtime import Runtime
from tests.ledger.conftest import Shop, assert_ledger_consistent, post_at

operation = st.one_of(
    st.tuples(st.just("SALE"), st.integers(100, 5_000_000)),
    st.tuples(st.just("REDEMPTION"), st.integers(1, 400)),
    st.tuples(st.just("MANUAL"), st.integers(-300, 300).filter(bool)),
    st.tuples(st.just("REFUND"), st.integers(1, 100)),  # percent of a past check
    st.tuples(st.just("DAYS"), st.integers(1, 60)),  # time passes; daily jobs run
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(operation, min_size=1, max_size=12),
    pending_days=st.sampled_from([0, 3]),
)
async def test_ledger_invariants_hold(
    make_shop: Any, runtime: Runtime, steps: list[tuple[str, int]], pending_days: int
) -> None:
    shop: Shop = await make_shop(expiry_days=30, pending_days=pending_days, max_redeem_percent=100)
    now = datetime(2026, 11, 1, 8, tzinfo=UTC)
    checks: list[tuple[str, int]] = []
    statuses: list[int] = []
    for i, (kind, value) in enumerate(steps):
        now += timedelta(minutes=7)
        try:
            if kind == "SALE":
                await post_at(
                    runtime, shop, now, {"type": "SALE", "amount": value, "check_number": f"c{i}"}
                )
                checks.append((f"c{i}", value))
            elif kind == "REDEMPTION":
                await post_at(
                    runtime,
                    shop,
                    now,
                    {
                        "type": "REDEMPTION",
                        "amount": value * 200,
                        "points": value,
                        "check_number": f"c{i}",
                    },
                )
                checks.append((f"c{i}", value * 200))
            elif kind == "MANUAL":
                await post_at(
                    runtime, shop, now, {"type": "MANUAL", "points": value, "reason": "p"}
                )
            elif kind == "REFUND" and checks:
                number, amount = checks[value % len(checks)]
                part = max(1, amount * value // 100)
                await post_at(
                    runtime, shop, now, {"type": "REFUND", "check_number": number, "amount": part}
                )
            elif kind == "DAYS":
                now += timedelta(days=value)
                await run_daily(runtime.db, now)
        except AppError as refused:  # refusals (no points, check refunded) change nothing
            statuses.append(refused.status)
        balance = await shop.balance()
        assert balance["balance"] >= 0  # type: ignore[operator]
        assert balance["pending_balance"] >= 0  # type: ignore[operator]
        await assert_ledger_consistent(runtime, shop)
    assert set(statuses) <= {404, 409, 422}  # refusals are client errors, never anything else
