"""GET /api/transactions: the ledger rows of the caller's restaurants, for a shift's view and
the manual operations awaiting approval."""

from __future__ import annotations

from typing import Any

from maxloyalty.identity.principal import Role
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_restaurant
from tests.ledger.conftest import Shop


async def test_managers_list_what_awaits_approval_in_their_restaurants(
    make_shop: Any, runtime: Runtime, auth: TokenFactory
) -> None:
    shop: Shop = await make_shop()
    sale = await shop.post({"type": "SALE", "amount": 100_000})
    assert sale.status_code == 201, sale.text
    big = await shop.post({"type": "MANUAL", "points": 5000, "reason": "banquet"})
    assert big.json()["status"] == "PENDING_APPROVAL"

    pending = await shop.client.get(
        "/api/transactions", params={"status": "PENDING", "type": "MANUAL"}, headers=shop.manager
    )
    assert pending.status_code == 200, pending.text
    rows = pending.json()["items"]
    assert [(r["type"], r["amount"], r["card_code"]) for r in rows] == [
        ("MANUAL", 5000, shop.card.code)
    ]
    everything = await shop.client.get("/api/transactions", headers=shop.manager)
    assert [r["type"] for r in everything.json()["items"]] == ["MANUAL", "ACCRUAL"]

    # A manager of another restaurant of the network sees none of it.
    elsewhere = await make_restaurant(runtime, shop.tenant)
    other = await auth(Role.MANAGER, shop.tenant.id, (elsewhere.id,))
    assert (await shop.client.get("/api/transactions", headers=other)).json()["items"] == []
    refused = await shop.client.get(
        "/api/transactions", params={"restaurant_id": str(shop.restaurant.id)}, headers=other
    )
    assert refused.status_code == 403
    assert (await shop.client.get("/api/transactions", headers=shop.cashier)).status_code == 403


async def test_the_list_pages_by_cursor(make_shop: Any) -> None:
    shop: Shop = await make_shop()
    for amount in (10_000, 20_000, 30_000):
        assert (await shop.post({"type": "SALE", "amount": amount})).status_code == 201
    first = (
        await shop.client.get("/api/transactions", params={"limit": 2}, headers=shop.manager)
    ).json()
    assert len(first["items"]) == 2
    rest = (
        await shop.client.get(
            "/api/transactions",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=shop.manager,
        )
    ).json()
    assert [r["check_amount"] for r in first["items"] + rest["items"]] == [30_000, 20_000, 10_000]
    assert rest["next_cursor"] is None
