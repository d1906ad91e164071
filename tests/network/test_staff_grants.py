"""A permission granted to staff never raises their role."""

from __future__ import annotations

import uuid

import httpx

from maxloyalty.identity.principal import Role
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import PASSWORD, bearer, login, make_restaurant, make_staff, make_tenant
from tests.test_app import assert_problem


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
