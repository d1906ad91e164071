"""API keys for tills, timed permissions, and a person's data rights."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import httpx
import time_machine
from sqlalchemy import select

from maxloyalty.identity.models import ApiKey, User
from maxloyalty.identity.principal import Role
from maxloyalty.kit.clock import utcnow
from maxloyalty.network.models import Tenant
from maxloyalty.runtime import Runtime
from tests.factories import PASSWORD, bearer, login, make_restaurant, make_staff, make_tenant
from tests.signing import ml_signature
from tests.test_app import assert_problem


async def _admin(client: httpx.AsyncClient, runtime: Runtime) -> tuple[Tenant, dict[str, str]]:
    tenant = await make_tenant(runtime)
    tokens = await login(client, await make_staff(runtime, tenant, Role.RESTAURANT_ADMIN))
    return tenant, bearer(tokens)


async def test_api_key_lifecycle(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tenant, admin = await _admin(client, runtime)
    restaurant = await make_restaurant(runtime, tenant)
    issued = await client.post(
        "/api/api-keys",
        json={"name": "Till 1", "restaurant_ids": [str(restaurant.id)]},
        headers=admin,
    )
    assert issued.status_code == 201, issued.text
    key = issued.json()["key"]
    assert key.startswith("mlk_")
    listed = (await client.get("/api/api-keys", headers=admin)).json()["items"]
    assert "key" not in listed[0]
    async with runtime.db.transaction(tenant.id) as session:
        stored = await session.scalar(select(ApiKey))
    assert stored is not None
    assert key not in stored.key_hash

    me = (await client.get("/api/auth/me", headers={"Authorization": f"Bearer {key}"})).json()
    assert me["role"] == "SYSTEM"
    assert me["restaurant_ids"] == [str(restaurant.id)]
    # A SYSTEM key is confined to its restaurants and may not manage staff.
    assert_problem(
        await client.get("/api/staff", headers={"Authorization": f"Bearer {key}"}),
        403,
        "role_forbidden",
    )

    revoked = await client.delete(f"/api/api-keys/{issued.json()['id']}", headers=admin)
    assert revoked.json()["revoked_at"] is not None
    answer = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert_problem(answer, 401, "api_key_revoked")
    forged = key[:-4] + "AAAA"
    answer = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert_problem(answer, 401, "invalid_api_key")


async def test_signed_requests(client: httpx.AsyncClient, runtime: Runtime) -> None:
    _, admin = await _admin(client, runtime)
    issued = (
        await client.post(
            "/api/api-keys", json={"name": "Till", "require_signature": True}, headers=admin
        )
    ).json()
    key, secret = issued["key"], issued["signing_secret"]
    now = int(time.time())
    auth = {"Authorization": f"Bearer {key}"}

    missing = await client.get("/api/auth/me", headers=auth)
    assert_problem(missing, 401, "invalid_signature")
    good = auth | {
        "X-ML-Timestamp": str(now),
        "X-ML-Signature": ml_signature(secret, now, "GET", "/api/auth/me"),
    }
    assert (await client.get("/api/auth/me", headers=good)).status_code == 200
    wrong_path = auth | {
        "X-ML-Timestamp": str(now),
        "X-ML-Signature": ml_signature(secret, now, "GET", "/api/staff"),
    }
    assert_problem(await client.get("/api/auth/me", headers=wrong_path), 401, "invalid_signature")
    old = now - 600
    stale = auth | {
        "X-ML-Timestamp": str(old),
        "X-ML-Signature": ml_signature(secret, old, "GET", "/api/auth/me"),
    }
    assert_problem(await client.get("/api/auth/me", headers=stale), 401, "invalid_signature")


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


async def test_export_and_erasure(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    email = await make_staff(runtime, tenant, Role.RESTAURANT_ADMIN)
    tokens = await login(client, email)
    data = (await client.get("/api/me/data", headers=bearer(tokens))).json()
    assert data["user"]["email"] == email
    assert data["memberships"][0]["role"] == "RESTAURANT_ADMIN"
    assert len(data["sessions"]) == 1

    assert (await client.post("/api/me/erase", headers=bearer(tokens))).status_code == 204
    user_id = uuid.UUID(data["user"]["id"])
    async with runtime.db.transaction() as session:
        user = await session.get(User, user_id)
    assert user is not None
    assert (user.email, user.email_hash, user.phone, user.password_hash) == (None,) * 4
    assert user.erased_at is not None
    refresh = await client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert_problem(refresh, 401, "invalid_refresh_token")
    relogin = await client.post("/api/auth/login", json={"login": email, "password": PASSWORD})
    assert_problem(relogin, 401, "invalid_credentials")
