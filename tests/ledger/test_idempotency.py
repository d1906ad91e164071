"""An operation is posted once: Idempotency-Keys and business keys."""

from __future__ import annotations

from typing import Any

from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.ledger.conftest import Shop


async def test_idempotency_keys_belong_to_their_caller(
    make_shop: Any, runtime: Runtime, auth: TokenFactory
) -> None:
    shop: Shop = await make_shop()
    async with runtime.db.transaction() as session:
        other = User(role=Role.CASHIER)
        session.add(other)
        await session.flush()
    second_till = await auth(Role.CASHIER, shop.tenant.id, (shop.restaurant.id,), subject=other.id)
    url = f"/api/guest/{shop.guest_id}/transaction"
    body = {"type": "SALE", "restaurant_id": str(shop.restaurant.id), "amount": 100_000}
    first = await shop.client.post(url, json=body, headers=shop.cashier | {"Idempotency-Key": "17"})
    second = await shop.client.post(url, json=body, headers=second_till | {"Idempotency-Key": "17"})
    assert first.status_code == second.status_code == 201
    assert first.json()["operation_id"] != second.json()["operation_id"]
    assert second.json()["balance"] == 100
