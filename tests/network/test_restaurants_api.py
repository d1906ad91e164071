"""Restaurants and points of sale through the API, per role and tenant."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.audit.models import ActivityLog
from maxloyalty.identity.principal import Role
from maxloyalty.kit.events import IntegrationEvent
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_restaurant, make_tenant
from tests.test_app import assert_problem

NEW = {"name": "Гриль Хаус — Арбат", "timezone": "Europe/Moscow", "city": "Москва"}


async def test_admin_creates_restaurant_with_audit_and_event(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin_id = uuid.uuid4()
    response = await client.post(
        "/api/restaurants",
        json=NEW,
        headers=await auth(Role.RESTAURANT_ADMIN, tenant.id, subject=admin_id)
        | {"User-Agent": "pytest-till/1.0", "X-Request-ID": "req-create-1"},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["tenant_id"] == str(tenant.id)
    assert created["timezone"] == "Europe/Moscow"
    assert created["status"] == "ACTIVE"

    async with runtime.db.transaction(tenant.id) as session:
        entry = await session.scalar(
            select(ActivityLog).where(ActivityLog.action == "restaurant.created")
        )
        event = await session.scalar(select(IntegrationEvent))
    assert entry is not None
    assert entry.actor_id == admin_id
    assert entry.actor_role == "RESTAURANT_ADMIN"
    assert entry.entity_id == created["id"]
    assert str(entry.ip) == "203.0.113.7"
    assert entry.user_agent == "pytest-till/1.0"
    assert entry.request_id == "req-create-1"
    assert entry.after is not None
    assert entry.after["name"] == NEW["name"]
    assert event is not None
    assert event.event_type == "restaurant.created"


async def test_duplicate_name_is_409_and_writes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    headers = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    assert (await client.post("/api/restaurants", json=NEW, headers=headers)).status_code == 201
    again = await client.post("/api/restaurants", json=NEW, headers=headers)
    assert_problem(again, 409, "restaurant_name_taken")
    async with runtime.db.transaction(tenant.id) as session:
        actions = list(await session.scalars(select(ActivityLog.action)))
        events = list(await session.scalars(select(IntegrationEvent.id)))
    assert actions.count("restaurant.created") == 1
    assert len(events) == 1


async def test_plan_limit_holds_under_concurrent_creation(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime, max_restaurants=3)
    headers = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    answers = await asyncio.gather(
        *(
            client.post(
                "/api/restaurants", json={"name": f"R{i}", "timezone": "UTC"}, headers=headers
            )
            for i in range(8)
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 3 + [409] * 5
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {
        "restaurant_limit_reached"
    }


async def test_roles_and_scopes(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant, other = await make_tenant(runtime), await make_tenant(runtime)
    mine = await make_restaurant(runtime, tenant, "Mine")
    theirs = await make_restaurant(runtime, tenant, "Not assigned")
    foreign = await make_restaurant(runtime, other, "Foreign")
    manager = await auth(Role.MANAGER, tenant.id, (mine.id,))

    listed = (await client.get("/api/restaurants", headers=manager)).json()
    assert [r["id"] for r in listed["items"]] == [str(mine.id)]
    assert (await client.get(f"/api/restaurants/{mine.id}", headers=manager)).status_code == 200
    assert_problem(
        await client.get(f"/api/restaurants/{theirs.id}", headers=manager),
        403,
        "restaurant_forbidden",
    )
    assert_problem(
        await client.get(f"/api/restaurants/{foreign.id}", headers=manager),
        404,
        "restaurant_not_found",
    )
    assert_problem(
        await client.post("/api/restaurants", json=NEW, headers=manager), 403, "role_forbidden"
    )
    cashier = await auth(Role.CASHIER, tenant.id, (mine.id,))
    assert_problem(
        await client.patch(f"/api/restaurants/{mine.id}", json={"city": "X"}, headers=cashier),
        403,
        "role_forbidden",
    )
    guest = await auth(Role.GUEST, tenant.id)
    assert_problem(await client.get("/api/restaurants", headers=guest), 403, "role_forbidden")
    admin_all = (
        await client.get("/api/restaurants", headers=await auth(Role.RESTAURANT_ADMIN, tenant.id))
    ).json()
    assert {r["id"] for r in admin_all["items"]} == {str(mine.id), str(theirs.id)}


async def test_update_records_before_and_after(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant, "Old name")
    response = await client.patch(
        f"/api/restaurants/{restaurant.id}",
        json={"name": "New name", "status": "PAUSED"},
        headers=await auth(Role.RESTAURANT_ADMIN, tenant.id),
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "New name"
    assert response.json()["status"] == "PAUSED"
    async with runtime.db.transaction(tenant.id) as session:
        entry = await session.scalar(
            select(ActivityLog).where(ActivityLog.action == "restaurant.updated")
        )
    assert entry is not None
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["name"], entry.after["name"]) == ("Old name", "New name")
    assert (entry.before["status"], entry.after["status"]) == ("ACTIVE", "PAUSED")


async def test_pagination_walks_every_row_once(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    made = {str((await make_restaurant(runtime, tenant, f"R{i:02}")).id) for i in range(7)}
    headers = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/restaurants", params=params, headers=headers)).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7
    assert set(seen) == made
    bad = await client.get("/api/restaurants", params={"cursor": "%%%"}, headers=headers)
    assert_problem(bad, 400, "invalid_cursor")


async def test_points_of_sale(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant, other = await make_tenant(runtime), await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    foreign = await make_restaurant(runtime, other)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    url = f"/api/restaurants/{restaurant.id}/points-of-sale"
    created = await client.post(url, json={"name": "Касса 1"}, headers=admin)
    assert created.status_code == 201, created.text
    assert_problem(
        await client.post(url, json={"name": "Касса 1"}, headers=admin), 409, "pos_name_taken"
    )
    listed = (
        await client.get(url, headers=await auth(Role.CASHIER, tenant.id, (restaurant.id,)))
    ).json()
    assert [p["name"] for p in listed["items"]] == ["Касса 1"]
    assert_problem(
        await client.post(
            f"/api/restaurants/{foreign.id}/points-of-sale", json={"name": "X"}, headers=admin
        ),
        404,
        "restaurant_not_found",
    )


async def test_platform_owner_creates_and_lists_tenants(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    owner = await auth(Role.OWNER)
    body = {"name": "Новая сеть", "slug": "new-chain", "timezone": "Asia/Vladivostok"}
    created = await client.post("/api/platform/tenants", json=body, headers=owner)
    assert created.status_code == 201, created.text
    assert created.json()["subscription_status"] == "TRIAL"
    assert_problem(
        await client.post("/api/platform/tenants", json=body, headers=owner),
        409,
        "tenant_slug_taken",
    )
    listed = (await client.get("/api/platform/tenants", headers=owner)).json()
    assert [t["slug"] for t in listed["items"]] == ["new-chain"]
    admin = await auth(Role.RESTAURANT_ADMIN, uuid.UUID(created.json()["id"]))
    assert_problem(await client.get("/api/platform/tenants", headers=admin), 403, "role_forbidden")


async def test_every_platform_call_is_audited_with_the_owner_as_actor(
    client: httpx.AsyncClient, auth: TokenFactory, owner_engine: AsyncEngine
) -> None:
    owner_id = uuid.uuid4()
    owner = await auth(Role.OWNER, subject=owner_id)
    body = {"name": "Сеть", "slug": "audited-chain"}
    assert (await client.post("/api/platform/tenants", json=body, headers=owner)).is_success
    taken = await client.post("/api/platform/tenants", json=body, headers=owner)
    assert_problem(taken, 409, "tenant_slug_taken")
    assert (await client.get("/api/platform/tenants?limit=5", headers=owner)).is_success
    # Refused callers never reach the platform session: nothing is logged for them.
    assert_problem(await client.get("/api/platform/tenants"), 401, "not_authenticated")

    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT action, entity_id, actor_id, actor_role, after FROM activity_log"
                    " WHERE action LIKE 'platform.%' ORDER BY created_at"
                )
            )
        ).all()
    assert [(r.action, r.entity_id) for r in rows] == [
        ("platform.write", "POST /api/platform/tenants"),
        ("platform.write", "POST /api/platform/tenants"),
        ("platform.read", "GET /api/platform/tenants"),
    ]
    assert {(r.actor_id, r.actor_role) for r in rows} == {(owner_id, "OWNER")}
    assert rows[2].after == {"path": "/api/platform/tenants", "query": {"limit": "5"}}
