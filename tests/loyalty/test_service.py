"""Programme rules beyond the defaults: rounding, rolling-window levels, card status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from maxloyalty.ledger.service.daily import run_daily
from maxloyalty.runtime import Runtime
from tests.ledger.conftest import Shop, post_at
from tests.test_app import assert_problem


async def test_rounding_setting(make_shop: Any, runtime: Runtime) -> None:
    floor: Shop = await make_shop()
    half: Shop = await make_shop(rounding="HALF_UP")
    ceiling: Shop = await make_shop(rounding="CEILING")
    body = {"type": "SALE", "amount": 1_190}  # 5% of 11.90 ₽ = 0.595 points
    assert [(await s.post(body)).json()["accrued"] for s in (floor, half, ceiling)] == [0, 1, 1]
    body = {"type": "SALE", "amount": 1_000}  # 0.5 points
    assert [(await s.post(body)).json()["accrued"] for s in (floor, half, ceiling)] == [0, 1, 1]
    body = {"type": "SALE", "amount": 900}  # 0.45 points
    assert [(await s.post(body)).json()["accrued"] for s in (floor, half, ceiling)] == [0, 0, 1]


async def test_rolling_window_levels_go_down_with_time(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop(level_metric="ROLLING", rolling_days=90)
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    upgraded = await post_at(runtime, shop, start, {"type": "SALE", "amount": 3_000_000})
    assert upgraded["level_changed"]["name"] == "SILVER"
    # 3 a.m. in Yekaterinburg (UTC+5) is 22:00 UTC the day before.
    within = datetime(2026, 12, 1, 22, 10, tzinfo=UTC)
    assert (await run_daily(runtime.db, within))["rolling"] == 1
    assert (await shop.balance())["level"]["name"] == "SILVER"  # type: ignore[index]
    after = datetime(2027, 2, 5, 22, 10, tzinfo=UTC)  # the spend left the 90-day window
    await run_daily(runtime.db, after)
    assert (await shop.balance())["level"]["name"] == "BRONZE"  # type: ignore[index]
    noon = after + timedelta(hours=10)  # other hours leave levels alone
    assert (await run_daily(runtime.db, noon))["rolling"] == 0


async def test_blocked_card(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    url = f"/api/cards/{shop.card.id}"
    blocked = await shop.client.patch(
        url, json={"status": "BLOCKED", "reason": "lost"}, headers=shop.manager
    )
    assert blocked.json() == {"card_id": str(shop.card.id), "status": "BLOCKED"}
    assert_problem(await shop.post({"type": "SALE", "amount": 100}), 409, "card_blocked")
    by_code = await shop.client.post(
        "/api/cards/identify",
        json={"restaurant_id": str(shop.restaurant.id), "code": shop.card.code},
        headers=shop.cashier,
    )
    assert_problem(by_code, 404, "card_not_found")
    assert_problem(
        await shop.client.patch(url, json={"status": "ACTIVE"}, headers=shop.cashier),
        403,
        "role_forbidden",
    )
    await shop.client.patch(url, json={"status": "ACTIVE"}, headers=shop.manager)
    assert (await shop.post({"type": "SALE", "amount": 100})).status_code == 201
    await shop.client.patch(url, json={"status": "DELETED"}, headers=shop.manager)
    assert_problem(
        await shop.client.patch(url, json={"status": "ACTIVE"}, headers=shop.manager),
        409,
        "card_deleted",
    )
