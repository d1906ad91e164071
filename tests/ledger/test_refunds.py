"""Refunds of a check, whole or a share: points returned, taken back, or owed."""

from __future__ import annotations

from typing import Any

from maxloyalty.guests.models import GuestCard
from maxloyalty.runtime import Runtime
from tests.ledger.conftest import Shop, assert_ledger_consistent, grant
from tests.test_app import assert_problem


async def test_full_and_partial_refunds(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    await shop.post({"type": "SALE", "amount": 200_000, "check_number": "F-1"})  # +100
    partial = await shop.post({"type": "REFUND", "check_number": "F-1", "amount": 50_000})
    assert partial.status_code == 201, partial.text
    assert partial.json()["reversed_points"] == 25
    assert partial.json()["balance"] == 75
    rest = await shop.post({"type": "REFUND", "check_number": "F-1"})
    assert rest.json()["reversed_points"] == 75
    assert rest.json()["balance"] == 0
    beyond = await shop.post({"type": "REFUND", "check_number": "F-1", "amount": 1})
    assert_problem(beyond, 422, "refund_exceeds_check")
    unknown = await shop.post({"type": "REFUND", "check_number": "nope"})
    assert_problem(unknown, 404, "check_not_found")
    async with runtime.db.transaction(shop.tenant.id) as session:
        card = await session.get(GuestCard, shop.card.id)
    assert card is not None
    assert card.lifetime_spent == 0
    await assert_ledger_consistent(runtime, shop)


async def test_refund_returns_redeemed_points_and_reports_spent_accrual(
    make_shop: Any, runtime: Runtime
) -> None:
    shop: Shop = await make_shop()
    await grant(shop, 100)
    sale = await shop.post(
        {"type": "REDEMPTION", "amount": 400_000, "points": 100, "check_number": "G-1"}
    )
    assert sale.json()["accrued"] == 195  # 5% of 3 900 ₽
    # The guest spends the accrued points elsewhere before the refund.
    await shop.post({"type": "REDEMPTION", "amount": 1_000_000, "points": 195})
    assert (await shop.balance())["balance"] == 490  # 5% of the 9 805 ₽ paid
    refund = (await shop.post({"type": "REFUND", "check_number": "G-1"})).json()
    assert refund["returned_points"] == 100  # the redeemed points come back
    # 195 accrued must go; the card holds 490 + 100 returned, so all of it is recovered.
    assert refund["reversed_points"] == 195
    assert refund["unrecovered_points"] == 0
    assert refund["balance"] == 395
    await assert_ledger_consistent(runtime, shop)


async def test_refund_never_takes_balance_below_zero(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop(max_redeem_percent=100)
    await shop.post({"type": "SALE", "amount": 200_000, "check_number": "H-1"})  # +100
    await shop.post({"type": "REDEMPTION", "amount": 10_000, "points": 100})  # spends them all
    refund = (await shop.post({"type": "REFUND", "check_number": "H-1"})).json()
    assert refund["reversed_points"] == 0
    assert refund["unrecovered_points"] == 100
    assert refund["balance"] == 0
    await assert_ledger_consistent(runtime, shop)


async def test_unrecovered_points_are_taken_by_a_later_refund(
    make_shop: Any, runtime: Runtime
) -> None:
    shop: Shop = await make_shop(max_redeem_percent=100)
    await shop.post({"type": "SALE", "amount": 200_000, "check_number": "U-1"})  # +100
    await shop.post({"type": "REDEMPTION", "amount": 10_000, "points": 100})  # spent
    first = (await shop.post({"type": "REFUND", "check_number": "U-1", "amount": 100_000})).json()
    assert (first["reversed_points"], first["unrecovered_points"]) == (0, 50)
    await shop.post({"type": "MANUAL", "points": 300, "reason": "later earnings"})
    rest = (await shop.post({"type": "REFUND", "check_number": "U-1"})).json()
    assert rest["reversed_points"] == 100  # the 50 still owed and the second half
    assert rest["balance"] == 200
    await assert_ledger_consistent(runtime, shop)
