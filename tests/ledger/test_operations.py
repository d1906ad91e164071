"""Cashier operations through the seed's route, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from maxloyalty.guests.models import CardStatus, GuestCard
from maxloyalty.ledger.models import PointLot, PointTransaction
from maxloyalty.runtime import Runtime
from tests.ledger.conftest import Shop, assert_ledger_consistent, grant
from tests.test_app import assert_problem


async def test_sale_accrues_on_money_paid(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    answer = await shop.post({"type": "SALE", "amount": 123_456, "check_number": "A-1"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    # BRONZE 5% of 1234.56 ₽ = 61.728 → 61 points.
    assert (body["accrued"], body["redeemed"], body["balance"]) == (61, 0, 61)
    assert body["level"]["name"] == "BRONZE"
    assert body["level_changed"] is None
    assert [t["type"] for t in body["transactions"]] == ["ACCRUAL"]

    async with runtime.db.transaction(shop.tenant.id) as session:
        lot = await session.scalar(select(PointLot))
        card = await session.get(GuestCard, shop.card.id)
    assert lot is not None
    assert card is not None
    assert card.lifetime_spent == 123_456
    assert card.total_visits == 1
    # Expiry: 180 days on, at the end of that day on the tenant's clock (UTC+5).
    local = lot.expires_at.astimezone(ZoneInfo("Asia/Yekaterinburg"))
    assert (local.hour, local.minute, local.second) == (23, 59, 59)
    start = lot.created_at.astimezone(local.tzinfo).date()
    assert local.date() == start + timedelta(days=180)
    await assert_ledger_consistent(runtime, shop)


async def test_replay_and_key_reuse(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    body = {"type": "SALE", "amount": 50_000, "check_number": "R-1"}
    first = await shop.post(body, key="till-1-check-R-1")
    again = await shop.post(body, key="till-1-check-R-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    other = await shop.post(body | {"amount": 60_000}, key="till-1-check-R-1")
    assert_problem(other, 422, "idempotency_key_reused")
    # The same check under a new key: the till lost its key, not the check.
    resent = await shop.post(body, key="another-key")
    assert resent.json() == first.json()
    changed = await shop.post(body | {"amount": 70_000}, key="third-key")
    assert_problem(changed, 409, "check_already_posted")
    assert (await shop.balance())["balance"] == 25
    async with runtime.db.transaction(shop.tenant.id) as session:
        rows = await session.scalar(select(func.count()).select_from(PointTransaction))
    assert rows == 1


async def test_hundred_concurrent_retries_post_once(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    body = {"type": "SALE", "amount": 100_000, "check_number": "C-100"}
    answers = await asyncio.gather(*(shop.post(body, key="one-key") for _ in range(100)))
    statuses = {a.status_code for a in answers}
    assert statuses <= {201, 409}, [a.text for a in answers if a.status_code not in (201, 409)]
    ok = [a.json() for a in answers if a.status_code == 201]
    assert ok
    assert all(a == ok[0] for a in ok)
    assert (await shop.balance())["balance"] == 50
    async with runtime.db.transaction(shop.tenant.id) as session:
        rows = await session.scalar(select(func.count()).select_from(PointTransaction))
    assert rows == 1
    await assert_ledger_consistent(runtime, shop)


async def test_fifty_concurrent_redemptions_never_overdraw(
    make_shop: Any, runtime: Runtime
) -> None:
    shop: Shop = await make_shop()
    await grant(shop, 100)
    answers = await asyncio.gather(
        *(
            shop.post(
                {"type": "REDEMPTION", "amount": 10_000, "points": 10, "check_number": f"X{i}"}
            )
            for i in range(50)
        )
    )
    codes = sorted(a.status_code for a in answers)
    # Each check takes 10 and gives back 4 (5% of the 90 ₽ paid): 100 → 94 → … → 10 → 4,
    # so exactly 16 fit, whatever order the database serializes them in.
    assert codes.count(201) == 16
    assert {a.json()["code"] for a in answers if a.status_code != 201} == {"insufficient_points"}
    assert (await shop.balance())["balance"] == 4
    await assert_ledger_consistent(runtime, shop)


async def test_redemption_rules(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    await grant(shop, 300)
    too_much = await shop.post({"type": "REDEMPTION", "amount": 20_000, "points": 150})
    assert_problem(too_much, 422, "redemption_limit_exceeded")  # 50% of 200 ₽ = 100
    over_balance = await shop.post({"type": "REDEMPTION", "amount": 1_000_000, "points": 301})
    assert_problem(over_balance, 409, "insufficient_points")
    ok = await shop.post(
        {"type": "REDEMPTION", "amount": 20_000, "points": 100, "check_number": "Q"}
    )
    body = ok.json()
    assert (body["redeemed"], body["paid_amount"], body["accrued"]) == (100, 10_000, 5)
    assert body["balance"] == 205
    assert [t["type"] for t in body["transactions"]] == ["REDEMPTION", "ACCRUAL"]
    await assert_ledger_consistent(runtime, shop)


async def test_spends_draw_soonest_expiring_lots_first(
    make_shop: Any, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    shop: Shop = await make_shop()
    await grant(shop, 30)
    await grant(shop, 50)
    async with runtime.db.transaction(shop.tenant.id) as session:
        lots = list(await session.scalars(select(PointLot).order_by(PointLot.created_at)))
    # Make the second lot the one that expires first (as the owner: the app may not).
    async with AsyncSession(owner_engine) as session, session.begin():
        await session.execute(
            update(PointLot)
            .where(PointLot.id == lots[1].id)
            .values(expires_at=lots[0].expires_at - timedelta(days=30))
        )
    await shop.post({"type": "REDEMPTION", "amount": 20_000, "points": 60})
    async with runtime.db.transaction(shop.tenant.id) as session:
        remaining = {
            lot.amount: lot.remaining
            for lot in await session.scalars(select(PointLot).where(PointLot.amount.in_([30, 50])))
        }
    assert remaining == {50: 0, 30: 20}
    await assert_ledger_consistent(runtime, shop)


async def test_tier_upgrade_applies_from_next_check(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    crossing = await shop.post({"type": "SALE", "amount": 3_000_000})  # 30 000 ₽: SILVER
    body = crossing.json()
    assert body["accrued"] == 1_500  # still BRONZE's 5% on the crossing check
    assert body["level_changed"]["name"] == "SILVER"
    assert body["level"]["name"] == "SILVER"
    following = (await shop.post({"type": "SALE", "amount": 100_000})).json()
    assert following["accrued"] == 100  # SILVER's 10%
    balance = await shop.balance()
    assert balance["level"]["name"] == "SILVER"  # type: ignore[index]
    assert balance["next_level"] == {  # type: ignore[comparison-overlap]
        "name": "GOLD",
        "min_spent": 10_000_000,
        "remaining_spend": 10_000_000 - 3_100_000,
    }


async def test_manual_operations_and_approval(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop(manual_approval_threshold=500)
    small = await shop.post({"type": "MANUAL", "points": 200, "reason": "apology"})
    assert small.json()["status"] == "COMPLETED"
    big = await shop.post({"type": "MANUAL", "points": 800, "reason": "event"})
    assert big.json()["status"] == "PENDING_APPROVAL"
    assert big.json()["balance"] == 200
    tx_id = big.json()["transactions"][0]["id"]

    cashier_try = await shop.client.post(f"/api/transactions/{tx_id}/approve", headers=shop.cashier)
    assert_problem(cashier_try, 403, "role_forbidden")
    approved = await shop.client.post(f"/api/transactions/{tx_id}/approve", headers=shop.manager)
    assert approved.status_code == 200, approved.text
    assert approved.json()["balance"] == 1000
    twice = await shop.client.post(f"/api/transactions/{tx_id}/approve", headers=shop.manager)
    assert_problem(twice, 409, "not_pending")

    debit = await shop.post({"type": "MANUAL", "points": -900, "reason": "fraud"})
    assert debit.json()["status"] == "PENDING_APPROVAL"
    rejected = await shop.client.post(
        f"/api/transactions/{debit.json()['transactions'][0]['id']}/reject", headers=shop.manager
    )
    assert rejected.json()["status"] == "CANCELLED"
    assert (await shop.balance())["balance"] == 1000
    no_reason = await shop.post({"type": "MANUAL", "points": 5})
    assert_problem(no_reason, 422, "validation_error")
    await assert_ledger_consistent(runtime, shop)


async def test_discount_program(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop("DISCOUNT", discount_cap_percent=3)
    body = (await shop.post({"type": "SALE", "amount": 100_000, "check_number": "D-1"})).json()
    assert (body["discount"], body["paid_amount"], body["accrued"]) == (3_000, 97_000, 0)
    assert body["balance"] == 0
    no_points = await shop.post({"type": "REDEMPTION", "amount": 100_000, "points": 5})
    assert_problem(no_points, 422, "points_not_used")
    refund = await shop.post({"type": "REFUND", "check_number": "D-1"})
    assert refund.status_code == 201, refund.text
    await assert_ledger_consistent(runtime, shop)


async def test_refusals(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    no_key = await shop.client.post(
        f"/api/guest/{shop.guest_id}/transaction",
        json={"type": "SALE", "restaurant_id": str(shop.restaurant.id), "amount": 100},
        headers=shop.cashier,
    )
    assert_problem(no_key, 400, "idempotency_key_required")
    assert_problem(await shop.post({"type": "SALE"}), 422, "validation_error")
    assert_problem(await shop.post({"type": "SALE", "amount": -5}), 422, "validation_error")
    negative = {"type": "SALE", "amount": 500, "points": -5}
    assert_problem(await shop.post(negative), 422, "validation_error")
    assert_problem(
        await shop.post({"type": "REFUND", "check_number": "x", "points": 5}),
        422,
        "validation_error",
    )
    assert_problem(
        await shop.post({"type": "SALE", "amount": 100}, guest=uuid.uuid4()), 404, "card_not_found"
    )
    other = await shop.client.post(
        f"/api/guest/{shop.guest_id}/transaction",
        json={"type": "SALE", "restaurant_id": str(uuid.uuid4()), "amount": 100},
        headers=shop.cashier | {"Idempotency-Key": "k"},
    )
    assert_problem(other, 403, "restaurant_forbidden")
    async with runtime.db.transaction(shop.tenant.id) as session:
        await session.execute(
            update(GuestCard).where(GuestCard.id == shop.card.id).values(status=CardStatus.BLOCKED)
        )
    assert_problem(await shop.post({"type": "SALE", "amount": 100}), 409, "card_blocked")


async def test_history_pages_and_filters(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    for i in range(5):
        await shop.post({"type": "SALE", "amount": 100_000 + i})
    await grant(shop, 7)
    url = f"/api/guest/{shop.guest_id}/history"
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = (await shop.client.get(url, params=params, headers=shop.cashier)).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 6
    manual = (await shop.client.get(url, params={"type": "MANUAL"}, headers=shop.cashier)).json()
    assert [t["amount"] for t in manual["items"]] == [7]
    future = (datetime.now().astimezone() + timedelta(days=1)).isoformat()
    empty = (await shop.client.get(url, params={"from": future}, headers=shop.cashier)).json()
    assert empty["items"] == []
    balance = await shop.balance()
    assert balance["nearest_expiry"]["points"] == 257  # type: ignore[index]
