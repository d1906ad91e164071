"""Rules that a review of the ledger and staff code asked to pin down."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.ledger.core import InsufficientPoints
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import PASSWORD, bearer, login, make_restaurant, make_staff, make_tenant
from tests.ledger.conftest import Shop
from tests.ledger.test_cashier import assert_ledger_consistent
from tests.ledger.test_jobs import post_at
from tests.test_app import assert_problem


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


async def test_a_staff_grant_does_not_escalate(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    admin = bearer(await login(client, await make_staff(runtime, tenant, Role.RESTAURANT_ADMIN)))
    email = await make_staff(runtime, tenant, Role.MANAGER, (restaurant,))
    manager = bearer(await login(client, email))
    staff = (await client.get("/api/staff", headers=admin)).json()["items"]
    me = next(s["id"] for s in staff if s["email"] == email)
    await client.post(
        f"/api/staff/{me}/permissions", json={"permission": "write:staff"}, headers=admin
    )
    assert (await client.get("/api/staff", headers=manager)).status_code == 200
    assert_problem(
        await client.patch(f"/api/staff/{me}", json={"role": "RESTAURANT_ADMIN"}, headers=manager),
        403,
        "self_management",
    )
    new_admin = {"email": "x@example.com", "password": PASSWORD, "role": "RESTAURANT_ADMIN"}
    assert_problem(
        await client.post("/api/staff", json=new_admin, headers=manager), 403, "role_forbidden"
    )
    assert_problem(
        await client.post(
            f"/api/staff/{me}/permissions", json={"permission": "write:staff"}, headers=manager
        ),
        403,
        "role_forbidden",
    )
    # The same person signed in as a guest of the network gets nothing from the grant.
    guest = await auth(Role.GUEST, tenant.id, subject=uuid.UUID(me))
    assert_problem(await client.get("/api/staff", headers=guest), 403, "role_forbidden")
    # Blocking ends the grant too.
    await client.post(f"/api/staff/{me}/block", json={"reason": "left"}, headers=admin)
    grants = (await client.get(f"/api/staff/{me}/permissions", headers=admin)).json()["items"]
    assert all(g["revoked_at"] for g in grants)


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


async def test_non_ascii_signatures_are_401(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    answer = await client.post(
        "/api/auth/telegram",
        json={"init_data": "auth_date=1&user=%7B%7D&hash=%C3%A9", "tenant_id": str(tenant.id)},
    )
    assert_problem(answer, 401, "invalid_init_data")
