"""The outbox: events are delivered after their change commits, and only then."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.kit import events
from maxloyalty.kit.events import EventStatus, IntegrationEvent
from maxloyalty.runtime import Runtime
from maxloyalty.worker import run_worker
from tests.factories import make_tenant


async def drain(runtime: Runtime) -> None:
    await asyncio.wait_for(run_worker(runtime, asyncio.Event(), drain=True), timeout=30)


class Receiver:
    """A real handler: records what it was given, failing the first `fail` times."""

    def __init__(self, fail: int = 0) -> None:
        self.received: list[tuple[str, dict[str, object]]] = []
        self.fail = fail

    async def __call__(self, session: AsyncSession, event: IntegrationEvent) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("receiver down")
        self.received.append((event.event_type, event.payload))


async def test_committed_event_is_delivered_once(runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    receiver = Receiver()
    events.subscribe("test.happened", receiver)
    try:
        async with runtime.db.transaction(tenant.id) as session:
            event = await events.publish(session, tenant.id, "test.happened", {"n": 1})
        await drain(runtime)
        await drain(runtime)
    finally:
        events.unsubscribe("test.happened", receiver)
    assert receiver.received == [("test.happened", {"n": 1})]
    async with runtime.db.transaction(tenant.id) as session:
        stored = await session.get(IntegrationEvent, event.id)
        assert stored is not None
        assert stored.status is EventStatus.DELIVERED
        assert stored.delivered_at is not None
        assert stored.attempts == 1


async def test_rolled_back_change_publishes_nothing(runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    receiver = Receiver()
    events.subscribe("test.happened", receiver)
    try:
        async with runtime.db.session(tenant.id) as session:
            await events.publish(session, tenant.id, "test.happened", {"n": 2})
            await session.rollback()
        await drain(runtime)
    finally:
        events.unsubscribe("test.happened", receiver)
    assert receiver.received == []
    async with runtime.db.transaction(tenant.id) as session:
        assert list(await session.scalars(select(IntegrationEvent))) == []


async def test_failed_delivery_is_recorded_and_retried(runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    receiver = Receiver(fail=1)
    events.subscribe("test.happened", receiver)
    try:
        async with runtime.db.transaction(tenant.id) as session:
            event = await events.publish(session, tenant.id, "test.happened", {"n": 3})
        await drain(runtime)  # drains the deferred retry (2 s of backoff) too
    finally:
        events.unsubscribe("test.happened", receiver)
    assert receiver.received == [("test.happened", {"n": 3})]
    async with runtime.db.transaction(tenant.id) as session:
        delivered = await session.get(IntegrationEvent, event.id)
        assert delivered is not None
        assert delivered.status is EventStatus.DELIVERED
        assert delivered.attempts == 2
        assert delivered.last_error == "ConnectionError: receiver down"
