"""The reward catalogue, and rewards bought with points."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from maxloyalty.identity.principal import Role
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_tenant
from tests.ledger.conftest import Shop, assert_ledger_consistent, grant
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


async def test_naive_datetimes_are_422(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    answer = await client.post(
        "/api/rewards",
        json={"name": "X", "points_price": 10, "active_from": "2030-01-01T00:00:00"},
        headers=admin,
    )
    assert_problem(answer, 422, "validation_error")
