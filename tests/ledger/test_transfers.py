"""Transfers between cards."""

from __future__ import annotations

import uuid
from typing import Any

from maxloyalty.guests.models import RegistrationSource
from maxloyalty.guests.service.cards import join_network
from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_guest, make_restaurant
from tests.ledger.conftest import Shop, assert_ledger_consistent, grant
from tests.test_app import assert_problem


async def test_transfers(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop(mode="SEPARATE")
    second = await make_restaurant(runtime, shop.tenant)
    async with runtime.db.transaction(shop.tenant.id) as session:
        guest = await session.get(User, shop.guest_id)
        assert guest is not None
        own_other = await join_network(
            session, shop.system, guest, RegistrationSource.POS, second.id
        )
        first = await join_network(
            session, shop.system, guest, RegistrationSource.POS, shop.restaurant.id
        )
    shop.card = first
    await grant(shop, 100)
    url = f"/api/guest/{shop.guest_id}/transfer"
    body = {"restaurant_id": str(shop.restaurant.id), "to_card_id": str(own_other.id), "points": 60}
    moved = await shop.client.post(url, json=body, headers=shop.cashier | {"Idempotency-Key": "t1"})
    assert moved.status_code == 201, moved.text
    assert moved.json()["balance"] == 40
    again = await shop.client.post(url, json=body, headers=shop.cashier | {"Idempotency-Key": "t1"})
    assert again.json() == moved.json()
    too_much = body | {"points": 41}
    assert_problem(
        await shop.client.post(
            url, json=too_much, headers=shop.cashier | {"Idempotency-Key": "t2"}
        ),
        409,
        "insufficient_points",
    )
    stranger = await make_guest(runtime, shop.system, restaurant_id=second.id)
    assert_problem(
        await shop.client.post(
            url,
            json=body | {"to_card_id": str(stranger.id)},
            headers=shop.cashier | {"Idempotency-Key": "t4"},
        ),
        403,
        "guest_transfers_disabled",
    )
    assert_problem(
        await shop.client.post(
            url,
            json=body | {"to_card_id": str(uuid.uuid4())},
            headers=shop.cashier | {"Idempotency-Key": "t3"},
        ),
        404,
        "card_not_found",
    )
    await assert_ledger_consistent(runtime, shop)


async def test_a_guest_cannot_move_another_guests_points(
    make_shop: Any, runtime: Runtime, auth: TokenFactory
) -> None:
    """Even where guests may give points to each other, only from their own card."""
    shop: Shop = await make_shop(allow_guest_transfers=True)
    thief = await make_guest(runtime, shop.system, restaurant_id=shop.restaurant.id)
    await grant(shop, 300)
    headers = await auth(Role.GUEST, shop.tenant.id, subject=thief.user_id)
    taken = await shop.client.post(
        f"/api/guest/{shop.guest_id}/transfer",
        json={
            "restaurant_id": str(shop.restaurant.id),
            "to_card_id": str(thief.id),
            "points": 100,
        },
        headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert_problem(taken, 404, "guest_not_found")
    balance = await shop.client.get(
        f"/api/guest/{shop.guest_id}/balance",
        params={"restaurant_id": str(shop.restaurant.id)},
        headers=shop.cashier,
    )
    assert balance.json()["balance"] == 300
