"""Staff management: timed permissions, and what a staff entry must hold."""

from __future__ import annotations

from datetime import timedelta

import httpx
import time_machine

from maxloyalty.identity.principal import Role
from maxloyalty.kit.clock import utcnow
from maxloyalty.network.models import Tenant
from maxloyalty.runtime import Runtime
from tests.factories import PASSWORD, bearer, login, make_restaurant, make_staff, make_tenant
from tests.test_app import assert_problem


async def _admin(client: httpx.AsyncClient, runtime: Runtime) -> tuple[Tenant, dict[str, str]]:
    tenant = await make_tenant(runtime)
    tokens = await login(client, await make_staff(runtime, tenant, Role.RESTAURANT_ADMIN))
    return tenant, bearer(tokens)


async def test_timed_permission_admits_beyond_role(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    admin = bearer(await login(client, await make_staff(runtime, tenant, Role.RESTAURANT_ADMIN)))
    manager_email = await make_staff(runtime, tenant, Role.MANAGER, (restaurant,))
    manager = bearer(await login(client, manager_email))
    assert_problem(await client.get("/api/staff", headers=manager), 403, "role_forbidden")

    staff = (await client.get("/api/staff", headers=admin)).json()["items"]
    manager_id = next(s["id"] for s in staff if s["email"] == manager_email)
    expires = (utcnow() + timedelta(hours=1)).isoformat()
    grant = await client.post(
        f"/api/staff/{manager_id}/permissions",
        json={"permission": "write:staff", "expires_at": expires},
        headers=admin,
    )
    assert grant.status_code == 201, grant.text
    assert (await client.get("/api/staff", headers=manager)).status_code == 200

    with time_machine.travel(utcnow() + timedelta(hours=2)):
        refreshed = bearer(await login(client, manager_email))
        assert_problem(await client.get("/api/staff", headers=refreshed), 403, "role_forbidden")

    await client.delete(f"/api/staff/{manager_id}/permissions/{grant.json()['id']}", headers=admin)
    assert_problem(await client.get("/api/staff", headers=manager), 403, "role_forbidden")
    history = (await client.get(f"/api/staff/{manager_id}/permissions", headers=admin)).json()[
        "items"
    ]
    assert history[0]["revoked_at"] is not None


async def test_staff_management_validations(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    other = await make_tenant(runtime)
    foreign = await make_restaurant(runtime, other)
    admin = bearer(await login(client, await make_staff(runtime, tenant, Role.RESTAURANT_ADMIN)))
    body = {"email": "new@example.com", "password": PASSWORD, "role": "CASHIER"}
    assert_problem(
        await client.post("/api/staff", json=body, headers=admin), 422, "restaurants_required"
    )
    assert_problem(
        await client.post(
            "/api/staff", json=body | {"restaurant_ids": [str(foreign.id)]}, headers=admin
        ),
        422,
        "unknown_restaurant",
    )
    assert_problem(
        await client.post("/api/staff", json=body | {"role": "OWNER"}, headers=admin),
        422,
        "invalid_staff_role",
    )
    assert_problem(
        await client.post("/api/staff", json=body | {"password": "short"}, headers=admin),
        422,
        "validation_error",
    )
    mine = await make_restaurant(runtime, tenant)
    created = await client.post(
        "/api/staff", json=body | {"restaurant_ids": [str(mine.id)]}, headers=admin
    )
    assert created.status_code == 201
    assert created.json()["email"] == "new@example.com"
    again = await client.post(
        "/api/staff", json=body | {"restaurant_ids": [str(mine.id)]}, headers=admin
    )
    assert_problem(again, 409, "staff_exists")
