"""Row-level security: PostgreSQL, not the application, keeps tenants apart."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.kit.db import APP_ROLE, PLATFORM_ROLE
from maxloyalty.runtime import Runtime
from tests.factories import make_restaurant, make_tenant


async def test_query_without_tenant_filter_sees_only_current_tenant(runtime: Runtime) -> None:
    a, b = await make_tenant(runtime), await make_tenant(runtime)
    a1 = await make_restaurant(runtime, a, "A one")
    a2 = await make_restaurant(runtime, a, "A two")
    b1 = await make_restaurant(runtime, b, "B one")

    async with runtime.db.transaction(a.id) as session:
        # Deliberately no WHERE tenant_id = ...: the policy must do it.
        rows = (await session.execute(text("SELECT id, tenant_id FROM restaurants"))).all()
    assert {r.id for r in rows} == {a1.id, a2.id}
    assert {r.tenant_id for r in rows} == {a.id}

    async with runtime.db.transaction(b.id) as session:
        ids = set((await session.execute(text("SELECT id FROM restaurants"))).scalars())
        tenants = set((await session.execute(text("SELECT id FROM tenants"))).scalars())
    assert ids == {b1.id}
    assert tenants == {b.id}


async def test_without_a_tenant_nothing_is_visible(runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    await make_restaurant(runtime, tenant)
    async with runtime.db.transaction() as session:
        for table in ("tenants", "restaurants", "points_of_sale", "activity_log"):
            count = await session.scalar(text(f"SELECT count(*) FROM {table}"))
            assert count == 0, table


async def test_tenant_setting_does_not_leak_across_transactions(runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    await make_restaurant(runtime, tenant)
    # The same pooled connections serve both sessions in turn.
    for _ in range(3):
        async with runtime.db.transaction(tenant.id) as session:
            assert await session.scalar(text("SELECT count(*) FROM restaurants")) == 1
        async with runtime.db.transaction() as session:
            assert await session.scalar(text("SELECT count(*) FROM restaurants")) == 0


async def test_cannot_write_rows_of_another_tenant(runtime: Runtime) -> None:
    a, b = await make_tenant(runtime), await make_tenant(runtime)
    b_restaurant = await make_restaurant(runtime, b)
    insert = text(
        "INSERT INTO restaurants (id, tenant_id, name, timezone, status, created_at, updated_at)"
        " VALUES (:id, :tenant, 'Intruder', 'UTC', 'ACTIVE', now(), now())"
    )
    with pytest.raises(DBAPIError, match="row-level security"):
        async with runtime.db.transaction(a.id) as session:
            await session.execute(insert, {"id": uuid.uuid4(), "tenant": b.id})

    async with runtime.db.transaction(a.id) as session:
        updated = await session.execute(
            text("UPDATE restaurants SET name = 'Hijacked' WHERE id = :id"),
            {"id": b_restaurant.id},
        )
        deleted = await session.execute(
            text("DELETE FROM restaurants WHERE id = :id"), {"id": b_restaurant.id}
        )
    assert updated.rowcount == 0  # type: ignore[attr-defined]
    assert deleted.rowcount == 0  # type: ignore[attr-defined]


async def test_point_of_sale_cannot_reference_another_tenants_restaurant(
    runtime: Runtime,
) -> None:
    a, b = await make_tenant(runtime), await make_tenant(runtime)
    b_restaurant = await make_restaurant(runtime, b)
    insert = text(
        "INSERT INTO points_of_sale (id, tenant_id, restaurant_id, name, status,"
        " created_at, updated_at) VALUES (:id, :tenant, :restaurant, 'Till', 'ACTIVE',"
        " now(), now())"
    )
    # Foreign-key checks bypass RLS, so the composite key is what stops this.
    with pytest.raises(DBAPIError, match="fk_points_of_sale_restaurant"):
        async with runtime.db.transaction(a.id) as session:
            await session.execute(
                insert, {"id": uuid.uuid4(), "tenant": a.id, "restaurant": b_restaurant.id}
            )


async def test_platform_path_reads_across_tenants_but_app_role_cannot(runtime: Runtime) -> None:
    a, b = await make_tenant(runtime), await make_tenant(runtime)
    await make_restaurant(runtime, a)
    await make_restaurant(runtime, b)
    async with runtime.db.platform_session() as platform:
        tenants = set((await platform.execute(text("SELECT id FROM tenants"))).scalars())
        count = await platform.scalar(text("SELECT count(*) FROM restaurants"))
        with pytest.raises(DBAPIError, match="permission denied"):
            await platform.execute(text("DELETE FROM restaurants"))
    assert {a.id, b.id} <= tenants
    assert count == 2


async def test_runtime_roles_neither_own_tables_nor_bypass_rls(runtime: Runtime) -> None:
    for engine, role in (
        (runtime.db.engine, APP_ROLE),
        (runtime.db.platform_engine, PLATFORM_ROLE),
    ):
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles"
                        " WHERE rolname = current_user"
                    )
                )
            ).one()
            owned = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                    " AND tableowner = current_user"
                )
            )
        assert row.name == role
        assert not row.rolsuper
        assert not row.rolbypassrls
        assert owned == 0


async def test_every_table_with_tenant_id_has_rls_enabled(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT c.relname, c.relrowsecurity FROM pg_class c"
                    " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'"
                    " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')"
                )
            )
        ).all()
    assert len(rows) >= 4
    assert [r.relname for r in rows if not r.relrowsecurity] == []
