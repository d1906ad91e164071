"""An endpoint receives its events in the order they happened, one request at a time, with
a failed one retried before anything later is sent."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.integrations.webhooks import delivery, tasks
from maxloyalty.integrations.webhooks.models import DeliveryStatus, WebhookDelivery
from maxloyalty.kit import events, jobs
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_guest, make_program, make_restaurant, make_tenant
from tests.integrations.fake_http import Answer, FakeServer
from tests.integrations.webhooks.test_delivery import (
    HeaderAnswer,
    attempts_of,
    drain,
    ping,
    received,
    register,
    send_now,
)


async def test_a_sale_and_its_refund_arrive_in_order_through_failures(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    card = await make_guest(
        runtime, await make_program(runtime, tenant), restaurant_id=restaurant.id
    )
    async with runtime.db.transaction() as session:
        cashier = User(role=Role.CASHIER)  # a real person: operations record who posted them
        session.add(cashier)
    till = await auth(Role.CASHIER, tenant.id, (restaurant.id,), subject=cashier.id)
    await drain(runtime)  # the set-up's own events, before anyone listens
    async with FakeServer() as receiver:
        receiver.script = [Answer(500), HeaderAnswer(503, headers=(("Retry-After", "2"),))]
        hook = await register(
            client,
            await auth(Role.RESTAURANT_ADMIN, tenant.id),
            receiver.url,
            ["transaction.created", "transaction.reversed"],
        )
        for body in (
            {"type": "SALE", "amount": 200_000, "check_number": "W-1"},
            {"type": "REFUND", "check_number": "W-1"},
        ):
            answer = await client.post(
                f"/api/guest/{card.user_id}/transaction",
                json={"restaurant_id": str(restaurant.id)} | body,
                headers=till | {"Idempotency-Key": uuid.uuid4().hex},
            )
            assert answer.status_code == 201, answer.text
        await drain(runtime)

    bodies = received(receiver, hook["secret"])  # every signature verifies
    assert [p["type"] for p in bodies] == ["transaction.created"] * 3 + ["transaction.reversed"]
    assert [p["data"]["type"] for p in bodies] == ["SALE"] * 3 + ["REFUND"]
    assert bodies[3]["data"]["reversed_points"] == bodies[0]["data"]["accrued"] == 100
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids[0] == ids[1] == ids[2] != ids[3]  # one id per event, kept across retries
    log = await attempts_of(runtime, tenant.id)
    assert [(a.event_type, a.attempt, a.status_code) for a in log] == [
        ("transaction.created", 1, 500),
        ("transaction.created", 2, 503),
        ("transaction.created", 3, 200),
        ("transaction.reversed", 1, 200),
    ]
    assert log[2].created_at - log[1].created_at >= timedelta(seconds=1.9)  # Retry-After: 2


async def test_a_failed_event_is_not_overtaken(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    async with FakeServer() as receiver:
        receiver.script = [Answer(500)]
        hook = await register(client, await auth(Role.RESTAURANT_ADMIN, tenant.id), receiver.url)
        for n in (1, 2, 3):
            await ping(runtime, tenant.id, n)
        await drain(runtime)
    assert [p["data"]["n"] for p in received(receiver, hook["secret"])] == [1, 1, 2, 3]


async def test_a_later_event_waits_for_an_earlier_one_still_in_the_outbox(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    async with FakeServer() as receiver:
        hook = await register(client, await auth(Role.RESTAURANT_ADMIN, tenant.id), receiver.url)
        await ping(runtime, tenant.id, 1)
        second = await ping(runtime, tenant.id, 2)
        # The outbox happens to deliver event 2 first (its jobs run concurrently).
        await send_now(runtime, second, uuid.UUID(hook["id"]))
        assert receiver.requests == []
        await drain(runtime)
    assert [p["data"]["n"] for p in received(receiver, hook["secret"])] == [1, 2]


async def test_an_event_the_outbox_gave_up_on_holds_nothing_back(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory, owner_engine: AsyncEngine
) -> None:
    tenant = await make_tenant(runtime)
    async with FakeServer() as receiver:
        hook = await register(client, await auth(Role.RESTAURANT_ADMIN, tenant.id), receiver.url)
        first = await ping(runtime, tenant.id, 1)
        second = await ping(runtime, tenant.id, 2)
        given_up = jobs.registry.jobs[events.DELIVER_JOB].max_attempts
        async with owner_engine.begin() as conn:
            await conn.execute(
                update(events.IntegrationEvent)
                .where(events.IntegrationEvent.id == first.id)
                .values(attempts=given_up)
            )
        await send_now(runtime, second, uuid.UUID(hook["id"]))
    assert [p["data"]["n"] for p in received(receiver, hook["secret"])] == [2]


class GatedServer(FakeServer):
    """Holds every connection until `gate` opens; counts how many are open at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.open = 0
        self.most_open = 0
        self.arrived = asyncio.Event()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        self.arrived.set()
        try:
            await self.gate.wait()
            await super()._handle(reader, writer)
        finally:
            self.open -= 1


async def test_one_request_at_a_time_per_endpoint(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    ctx = runtime.job_context()
    async with GatedServer() as receiver:
        hook = await register(client, admin, receiver.url)
        endpoint_id = uuid.UUID(hook["id"])
        receiver.gate.set()
        await ping(runtime, tenant.id, 1)
        await drain(runtime)
        receiver.gate.clear()
        second = await ping(runtime, tenant.id, 2)
        await events.deliver(ctx, {"tenant_id": str(tenant.id), "event_id": str(second.id)})
        sending = asyncio.create_task(delivery.drain(ctx, tenant.id, endpoint_id))
        await asyncio.wait_for(receiver.arrived.wait(), timeout=5)
        # While event 2 is in flight, event 1 is queued again: it is older, so it is the
        # head now, and a second drain is woken for it. It must leave it to the first.
        first_attempt = (await attempts_of(runtime, tenant.id))[0]
        again = await client.post(
            f"/api/webhooks/deliveries/{first_attempt.id}/redeliver", headers=admin
        )
        assert again.status_code == 202, again.text
        await asyncio.wait_for(delivery.drain(ctx, tenant.id, endpoint_id), timeout=5)
        assert receiver.most_open == 1
        receiver.gate.set()
        await asyncio.wait_for(sending, timeout=10)  # the holder looks again: sends event 1
    assert receiver.most_open == 1
    assert [p["data"]["n"] for p in received(receiver, hook["secret"])] == [1, 2, 1]


async def test_the_sweep_wakes_a_queue_whose_wake_up_was_lost(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory, owner_engine: AsyncEngine
) -> None:
    tenant = await make_tenant(runtime)
    ctx = runtime.job_context()
    async with FakeServer() as receiver:
        hook = await register(client, await auth(Role.RESTAURANT_ADMIN, tenant.id), receiver.url)
        event = await ping(runtime, tenant.id, 1)
        await events.deliver(ctx, {"tenant_id": str(tenant.id), "event_id": str(event.id)})
        async with owner_engine.begin() as conn:  # the drain job is lost
            await conn.execute(text("DELETE FROM pgqueuer WHERE entrypoint = 'webhooks.drain'"))
        await tasks.sweep(ctx, {})
        await drain(runtime)
        assert receiver.requests == []  # due for under a minute: not stalled yet

        async with owner_engine.begin() as conn:
            await conn.execute(
                update(WebhookDelivery).values(
                    created_at=WebhookDelivery.created_at - timedelta(minutes=2)
                )
            )
        await tasks.sweep(ctx, {})
        await drain(runtime)
    assert [p["data"]["n"] for p in received(receiver, hook["secret"])] == [1]
    async with runtime.db.transaction(tenant.id) as session:
        delivery = await session.scalar(select(WebhookDelivery))
    assert delivery is not None
    assert delivery.status is DeliveryStatus.SENT
