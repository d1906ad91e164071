"""Reference data kept per process: read once, dropped the moment it changes — here and,
through Redis, in the other processes — and never one network's for another."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from maxloyalty.config import Settings
from maxloyalty.kit.refdata import TOPIC, reference
from maxloyalty.loyalty.models import LoyaltySystem
from maxloyalty.loyalty.service import levels_of, program_for
from maxloyalty.network.errors import RestaurantNotFound
from maxloyalty.runtime import Runtime
from tests.factories import make_program, make_restaurant, make_tenant


async def test_a_change_is_seen_by_the_next_read_in_this_process(runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    await make_program(runtime, tenant, max_redeem_percent=Decimal(50))
    async with runtime.db.transaction(tenant.id) as session:
        first = await program_for(session, restaurant.id)
    async with runtime.db.transaction(tenant.id) as session:
        assert await program_for(session, restaurant.id) is not first  # a kept copy
        kept = await program_for(session, restaurant.id)
    assert kept.max_redeem_percent == Decimal(50)

    async with runtime.db.transaction(tenant.id) as session:
        system = await session.scalar(select(LoyaltySystem))
        assert system is not None
        system.max_redeem_percent = Decimal(20)
    async with runtime.db.transaction(tenant.id) as session:
        assert (await program_for(session, restaurant.id)).max_redeem_percent == Decimal(20)


async def test_a_rolled_back_change_keeps_what_was_kept(runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    await make_program(runtime, tenant)
    async with runtime.db.transaction(tenant.id) as session:
        await program_for(session, restaurant.id)
        kept = await program_for(session, restaurant.id)

    async def change_then_think_again() -> None:
        async with runtime.db.transaction(tenant.id) as session:
            system = await session.scalar(select(LoyaltySystem))
            assert system is not None
            system.expiry_days = 1
            await session.flush()
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        await change_then_think_again()
    async with runtime.db.transaction(tenant.id) as session:
        assert await program_for(session, restaurant.id) is kept


async def test_one_networks_rows_never_answer_another(runtime: Runtime) -> None:
    ours, theirs = await make_tenant(runtime), await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, ours)
    system = await make_program(runtime, ours)
    await make_program(runtime, theirs)
    async with runtime.db.transaction(ours.id) as session:
        await program_for(session, restaurant.id)
        assert await levels_of(session, system.id)
    async with runtime.db.transaction(theirs.id) as session:
        with pytest.raises(RestaurantNotFound):
            await program_for(session, restaurant.id)
        assert await levels_of(session, system.id) == []


async def test_what_was_read_before_a_change_is_not_kept_after_it(runtime: Runtime) -> None:
    tenant_id = uuid.uuid4()
    stamp = reference.stamp(tenant_id)
    reference.invalidate(tenant_id)  # a change commits while the old value is being read
    reference.put(tenant_id, "key", "old", stamp)
    assert reference.get(tenant_id, "key") is None


async def test_a_commit_that_changes_a_network_announces_it(runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    await make_program(runtime, tenant)
    async with runtime.live.subscribe(TOPIC) as heard:
        async with runtime.db.transaction(tenant.id) as session:
            system = await session.scalar(select(LoyaltySystem))
            assert system is not None
            system.expiry_days = 30
        message = await asyncio.wait_for(anext(aiter(heard)), 5)
    assert message == {"tenant_id": str(tenant.id)}


async def test_other_processes_drop_what_one_changed(settings: Settings) -> None:
    if not settings.redis_url:
        pytest.skip("REDIS_URL: the processes meet through Redis")
    shared = settings.model_copy(update={"redis_key_prefix": f"refdata{uuid.uuid4().hex[:8]}"})
    writer, reader = Runtime.start(shared), Runtime.start(shared)
    reader.follow_changes()
    tenant_id = uuid.uuid4()
    try:
        await asyncio.sleep(0.3)  # the reader's subscription is in force
        reference.put(tenant_id, "program", "kept", reference.stamp(tenant_id))
        await writer.live.publish(TOPIC, {"tenant_id": str(tenant_id)})
        for _ in range(100):
            if reference.get(tenant_id, "program") is None:
                break
            await asyncio.sleep(0.02)
        assert reference.get(tenant_id, "program") is None
    finally:
        await writer.close()
        await reader.close()


async def test_a_transaction_that_changes_levels_reads_its_own(runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    system = await make_program(runtime, tenant)
    async with runtime.db.transaction(tenant.id) as session:
        before = await levels_of(session, system.id)
    async with runtime.db.transaction(tenant.id) as session:
        level = await session.get(type(before[0]), before[0].id)
        assert level is not None
        level.name = "RENAMED"
        assert (await levels_of(session, system.id))[0].name == "RENAMED"  # pending
        await session.flush()
        assert (await levels_of(session, system.id))[0].name == "RENAMED"  # flushed
