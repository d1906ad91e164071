"""API keys for tills: their lifecycle, and signed requests."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import select

from maxloyalty.identity.models import ApiKey
from maxloyalty.identity.principal import Role
from maxloyalty.network.models import Tenant
from maxloyalty.runtime import Runtime
from tests.factories import bearer, login, make_restaurant, make_staff, make_tenant
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
