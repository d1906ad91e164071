"""The activity log is append-only for the app and split into monthly partitions."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.audit.service import record
from maxloyalty.audit.tasks import PARTITION_JOB
from maxloyalty.kit import jobs
from maxloyalty.kit.clock import utcnow
from maxloyalty.runtime import Runtime
from maxloyalty.worker import run_worker
from tests.factories import make_tenant


async def test_app_role_can_append_but_not_change_or_delete(runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    async with runtime.db.transaction(tenant.id) as session:
        await record(session, "test.done", "thing", "42", after={"x": 1})
    for statement in (
        "UPDATE activity_log SET action = 'forged'",
        "DELETE FROM activity_log",
        "TRUNCATE activity_log",
    ):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with runtime.db.transaction(tenant.id) as session:
                await session.execute(text(statement))
    async with runtime.db.transaction(tenant.id) as session:
        actions = set((await session.execute(text("SELECT action FROM activity_log"))).scalars())
    assert actions == {"tenant.created", "test.done"}


async def test_tenant_cannot_append_to_another_tenants_log(runtime: Runtime) -> None:
    a, b = await make_tenant(runtime), await make_tenant(runtime)
    with pytest.raises(DBAPIError, match="row-level security"):
        async with runtime.db.transaction(a.id) as session:
            await record(session, "test.forged", "thing", tenant_id=b.id)


async def _partitions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'activity_log'::regclass"
            )
        )
        return set(rows.scalars())


async def test_partition_job_creates_months_ahead_once(
    runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    months = await _partitions(owner_engine)
    # Drop the partition two months ahead, inside the job's reach, so it has work to do.
    ahead = utcnow().replace(day=1) + timedelta(days=62)
    victim = f"activity_log_{ahead:%Y_%m}"
    assert victim in months
    async with owner_engine.begin() as conn:
        await conn.execute(text(f'DROP TABLE "{victim}"'))
    assert victim not in await _partitions(owner_engine)

    async with runtime.db.transaction() as session:
        await jobs.enqueue(session, PARTITION_JOB, {})
    await asyncio.wait_for(run_worker(runtime, asyncio.Event(), drain=True), timeout=30)
    assert await _partitions(owner_engine) == months

    async with runtime.db.transaction() as session:
        created = await session.scalar(text("SELECT maxloyalty_ensure_partitions(3)"))
    assert created == 0


async def test_partition_function_refuses_silly_ranges(runtime: Runtime) -> None:
    with pytest.raises(DBAPIError, match="out of range"):
        async with runtime.db.transaction() as session:
            await session.execute(text("SELECT maxloyalty_ensure_partitions(1000)"))


async def test_periodic_partition_job_is_scheduled() -> None:
    assert jobs.registry.schedules[PARTITION_JOB] == "17 3 * * *"
    assert jobs.registry.jobs[PARTITION_JOB].concurrency_limit == 1
