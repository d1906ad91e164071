"""Rewards bought with points, and transfers between cards."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from maxloyalty.guests.models import RegistrationSource
from maxloyalty.guests.service import join_network
from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_guest, make_restaurant
from tests.ledger.conftest import Shop
from tests.ledger.test_cashier import assert_ledger_consistent, grant
from tests.test_app import assert_problem


async def test_reward_catalogue_and_redemption(
    make_shop: Any, runtime: Runtime, auth: TokenFactory
) -> None:
    shop: Shop = await make_shop()
    admin = await auth(Role.RESTAURANT_ADMIN, shop.tenant.id)
    coffee = await shop.client.post(
        "/api/rewards", json={"name": "Капучино", "points_price": 150, "stock": 3}, headers=admin
    )
    assert coffee.status_code == 201, coffee.text
    item = coffee.json()["id"]
    await grant(shop, 400)
    url = f"/api/rewards/{item}/redeem"
    body = {"restaurant_id": str(shop.restaurant.id), "guest_id": str(shop.guest_id)}
    answers = await asyncio.gather(
        *(
            shop.client.post(url, json=body, headers=shop.cashier | {"Idempotency-Key": f"r{i}"})
            for i in range(4)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 201, 409, 409]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"insufficient_points"}
    assert (await shop.balance())["balance"] == 100
    replay = await shop.client.post(
        url, json=body, headers=shop.cashier | {"Idempotency-Key": "r0"}
    )
    assert replay.status_code in {201, 409}
    listed = (await shop.client.get("/api/rewards", headers=shop.cashier)).json()["items"]
    assert listed[0]["stock"] == 1
    await grant(shop, 500)
    last = await shop.client.post(url, json=body, headers=shop.cashier | {"Idempotency-Key": "r9"})
    assert last.status_code == 201
    empty = await shop.client.post(url, json=body, headers=shop.cashier | {"Idempotency-Key": "rA"})
    assert_problem(empty, 409, "reward_out_of_stock")
    await assert_ledger_consistent(runtime, shop)


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
