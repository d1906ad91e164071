"""Outbound webhooks: signed with Standard Webhooks (checked by the `standardwebhooks`
package, an independent implementation), retried, disabled on 410, never sent for a change
that rolled back. The helpers here serve the other webhook test modules too."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from maxloyalty.identity.principal import Role
from maxloyalty.integrations.webhooks import delivery
from maxloyalty.integrations.webhooks.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookLog,
)
from maxloyalty.integrations.webhooks.signing import sign
from maxloyalty.kit import events
from maxloyalty.network.models import Restaurant
from maxloyalty.network.schemas import RestaurantCreate
from maxloyalty.network.service.restaurants import create_restaurant
from maxloyalty.runtime import Runtime
from maxloyalty.worker import run_worker
from tests.conftest import TokenFactory
from tests.factories import make_tenant
from tests.integrations.fake_http import Answer, FakeServer
from tests.test_app import assert_problem


async def drain(runtime: Runtime) -> None:
    """Run the worker until no job is left, delayed retries included."""
    await asyncio.wait_for(run_worker(runtime, asyncio.Event(), drain=True), timeout=60)


@dataclass(frozen=True)
class HeaderAnswer(Answer):
    """An answer with extra response headers (Retry-After)."""

    headers: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        status_line, _, rest = super().encode().partition(b"\r\n")
        extra = "".join(f"{name}: {value}\r\n" for name, value in self.headers).encode()
        return status_line + b"\r\n" + extra + rest


async def register(
    client: httpx.AsyncClient, admin: dict[str, str], url: str, types: list[str] | None = None
) -> dict[str, Any]:
    answer = await client.post(
        "/api/webhooks/endpoints", json={"url": url, "event_types": types or []}, headers=admin
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def attempts_of(runtime: Runtime, tenant_id: uuid.UUID) -> list[WebhookLog]:
    async with runtime.db.transaction(tenant_id) as session:
        return list(
            await session.scalars(
                select(WebhookLog).order_by(WebhookLog.created_at, WebhookLog.attempt)
            )
        )


async def ping(runtime: Runtime, tenant_id: uuid.UUID, n: int) -> events.IntegrationEvent:
    async with runtime.db.transaction(tenant_id) as session:
        return await events.publish(session, tenant_id, "test.ping", {"n": n})


async def send_now(
    runtime: Runtime, event: events.IntegrationEvent, endpoint_id: uuid.UUID
) -> None:
    """Run the outbox for `event` and then one drain of the endpoint, here and now."""
    ctx = runtime.job_context()
    await events.deliver(ctx, {"tenant_id": str(event.tenant_id), "event_id": str(event.id)})
    await delivery.drain(ctx, event.tenant_id, endpoint_id)


def received(receiver: FakeServer, secret: str) -> list[dict[str, Any]]:
    """The bodies the receiver got, each signature verified."""
    verifier = Webhook(secret)
    return [verifier.verify(r.body, r.headers) for r in receiver.requests]


def test_signature_matches_the_spec_vector() -> None:
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


async def test_events_arrive_signed_and_in_order(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    async with FakeServer() as receiver:
        hook = await register(
            client, admin, receiver.url + "/hook", ["restaurant.created", "restaurant.updated"]
        )
        assert hook["secret"].startswith("whsec_")
        created = await client.post(
            "/api/restaurants", json={"name": "Новый", "timezone": "UTC"}, headers=admin
        )
        await client.patch(
            f"/api/restaurants/{created.json()['id']}", json={"city": "Тула"}, headers=admin
        )
        await drain(runtime)
    assert [p["type"] for p in received(receiver, hook["secret"])] == [
        "restaurant.created",
        "restaurant.updated",
    ]
    for request in receiver.requests:
        assert request.path == "/hook"
        assert request.headers["webhook-id"].startswith("msg_")
    tampered = receiver.requests[0].body.replace(b"UTC", b"XYZ")
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(tampered, receiver.requests[0].headers)
    log = await client.get(f"/api/webhooks/endpoints/{hook['id']}/deliveries", headers=admin)
    assert [d["succeeded"] for d in log.json()["items"]] == [True, True]


async def test_failures_are_retried_and_410_disables(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    async with FakeServer() as receiver:
        receiver.script = [Answer(500), Answer(503)]
        hook = await register(client, admin, receiver.url)
        await ping(runtime, tenant.id, 1)
        await drain(runtime)  # the retries come a second apart: drain waits for them
        assert len(receiver.requests) == 3
        log = await attempts_of(runtime, tenant.id)
        assert [(a.attempt, a.status_code, a.succeeded) for a in log] == [
            (1, 500, False),
            (2, 503, False),
            (3, 200, True),
        ]
        assert len({a.delivery_id for a in log}) == 1
        assert [a.next_attempt_at is not None for a in log] == [True, True, False]

        receiver.answer = Answer(410)
        await ping(runtime, tenant.id, 2)
        await drain(runtime)
        async with runtime.db.transaction(tenant.id) as session:
            endpoint = await session.get(WebhookEndpoint, hook["id"])
            second = await session.scalar(
                select(WebhookDelivery)
                .where(WebhookDelivery.event_type == "test.ping")
                .order_by(WebhookDelivery.event_created_at.desc())
                .limit(1)
            )
        assert endpoint is not None
        assert (endpoint.is_active, endpoint.disabled_reason) == (
            False,
            "410 Gone from the receiver",
        )
        assert len(receiver.requests) == 4  # no retry after 410
        assert second is not None
        assert second.status is DeliveryStatus.PENDING  # kept for when it is enabled again

        last = (await attempts_of(runtime, tenant.id))[-1]
        again = await client.post(f"/api/webhooks/deliveries/{last.id}/redeliver", headers=admin)
        assert_problem(again, 409, "webhook_endpoint_disabled")


async def test_an_answer_in_a_charset_we_cannot_read_is_logged_and_counts(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    async with FakeServer() as receiver:
        receiver.script = [Answer(200, "ок".encode() * 2000, "text/plain; charset=undefined")]
        await register(client, admin, receiver.url)
        await ping(runtime, tenant.id, 1)
        await ping(runtime, tenant.id, 2)
        await drain(runtime)
        assert len(receiver.requests) == 2  # the next event was not held up behind it
        assert receiver.requests[0].headers["accept-encoding"] == "identity"
    [first, second] = await attempts_of(runtime, tenant.id)
    assert (first.status_code, first.succeeded, second.succeeded) == (200, True, True)
    assert first.response_body is not None
    assert first.response_body.startswith("окок")
    assert len(first.response_body.encode()) <= 2000


async def test_a_delivery_is_given_up_after_the_schedule_and_the_next_goes(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime.settings, "webhook_retry_schedule", [0, 0])
    tenant = await make_tenant(runtime)
    async with FakeServer() as receiver:
        receiver.script = [Answer(500)] * 3
        hook = await register(client, await auth(Role.RESTAURANT_ADMIN, tenant.id), receiver.url)
        await ping(runtime, tenant.id, 1)
        await ping(runtime, tenant.id, 2)
        await drain(runtime)
    assert [p["data"]["n"] for p in received(receiver, hook["secret"])] == [1, 1, 1, 2]
    async with runtime.db.transaction(tenant.id) as session:
        states = [
            (d.attempts, d.status)
            for d in await session.scalars(
                select(WebhookDelivery).order_by(WebhookDelivery.event_created_at)
            )
        ]
    assert states == [(3, DeliveryStatus.FAILED), (1, DeliveryStatus.SENT)]


async def test_rolled_back_change_sends_nothing(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: TokenFactory,
    owner_engine: AsyncEngine,
) -> None:
    tenant = await make_tenant(runtime)
    async with FakeServer() as receiver:
        await register(client, await auth(Role.RESTAURANT_ADMIN, tenant.id), receiver.url)
        async with owner_engine.connect() as conn:
            jobs_before = await conn.scalar(text("SELECT count(*) FROM pgqueuer"))
        async with runtime.db.session(tenant.id) as session:
            await create_restaurant(
                session, tenant.id, RestaurantCreate(name="Передумали", timezone="UTC")
            )
            await session.rollback()
        async with owner_engine.connect() as conn:
            # The outbox job went with the transaction: it was enqueued on its connection.
            assert await conn.scalar(text("SELECT count(*) FROM pgqueuer")) == jobs_before
        await drain(runtime)
        assert receiver.requests == []
        async with runtime.db.transaction(tenant.id) as session:
            for model in (Restaurant, events.IntegrationEvent, WebhookDelivery, WebhookLog):
                assert await session.scalar(select(func.count()).select_from(model)) == 0

        # The same change committed is delivered: the rollback is what sent nothing.
        async with runtime.db.transaction(tenant.id) as session:
            await create_restaurant(
                session, tenant.id, RestaurantCreate(name="Решились", timezone="UTC")
            )
        await drain(runtime)
    assert len(receiver.requests) == 1


async def test_redelivery_sends_the_event_again_with_a_fresh_schedule(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    async with FakeServer() as receiver:
        hook = await register(client, admin, receiver.url)
        await ping(runtime, tenant.id, 1)
        await drain(runtime)
        first = (await attempts_of(runtime, tenant.id))[0]
        # A later event fails once and waits a second for its retry...
        receiver.script = [Answer(500)]
        later = await ping(runtime, tenant.id, 2)
        await send_now(runtime, later, uuid.UUID(hook["id"]))
        # ...and the redelivered one, being older, goes ahead of it.
        answer = await client.post(f"/api/webhooks/deliveries/{first.id}/redeliver", headers=admin)
        assert answer.status_code == 202, answer.text
        assert (answer.json()["status"], answer.json()["attempts"]) == ("PENDING", 0)
        await drain(runtime)
    assert [p["data"]["n"] for p in received(receiver, hook["secret"])] == [1, 2, 1, 2]
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids[0] == ids[2] != ids[1]  # the same event keeps its webhook-id
    log = await attempts_of(runtime, tenant.id)
    assert [(a.attempt, a.succeeded) for a in log] == [(1, True), (1, False), (1, True), (2, True)]
    assert log[0].delivery_id == log[2].delivery_id


async def test_redeliver_unknown_attempt_is_404(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    answer = await client.post(
        f"/api/webhooks/deliveries/{uuid.uuid4()}/redeliver",
        headers=await auth(Role.RESTAURANT_ADMIN, tenant.id),
    )
    assert_problem(answer, 404, "webhook_delivery_not_found")


async def test_retry_after_is_honoured_as_a_date_and_in_seconds(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    async with FakeServer() as receiver:
        # HTTP dates have whole seconds: this one is 2 to 3 seconds away.
        then = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
        receiver.script = [
            HeaderAnswer(429, headers=(("Retry-After", format_datetime(then, usegmt=True)),)),
            HeaderAnswer(503, headers=(("Retry-After", "2"),)),
        ]
        await register(client, await auth(Role.RESTAURANT_ADMIN, tenant.id), receiver.url)
        await ping(runtime, tenant.id, 1)
        await drain(runtime)
    first, second, third = await attempts_of(runtime, tenant.id)
    assert third.succeeded
    # The schedule says a second (±10 %); the receiver asked for more, and got it.
    margin = timedelta(milliseconds=50)
    assert first.next_attempt_at is not None
    assert first.next_attempt_at >= then - margin
    assert second.created_at >= then - margin
    assert second.next_attempt_at is not None
    assert second.next_attempt_at - second.created_at >= timedelta(seconds=2) - margin
    assert third.created_at - second.created_at >= timedelta(seconds=2) - margin


def test_retry_delay_reads_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    schedule = [5, 300]
    first = delivery.retry_delay(1, None, schedule, now)
    assert first is not None
    assert 4.5 <= first.total_seconds() <= 5.5
    assert delivery.retry_delay(1, "120", schedule, now) == timedelta(seconds=120)
    in_an_hour = "Thu, 01 Jan 2026 13:00:00 GMT"
    assert delivery.retry_delay(1, in_an_hour, schedule, now) == timedelta(hours=1)
    # Never beyond a day, never sooner than the schedule, and nonsense is ignored.
    assert delivery.retry_delay(1, "9" * 5000, schedule, now) == timedelta(days=1)
    assert delivery.retry_delay(1, "Fri, 01 Jan 2027 13:00:00 GMT", schedule, now) == timedelta(
        days=1
    )
    for ignored in ("0", "Wed, 31 Dec 2025 00:00:00 GMT", "soon", "²"):
        delay = delivery.retry_delay(1, ignored, schedule, now)
        assert delay is not None
        assert 4.5 <= delay.total_seconds() <= 5.5
    assert delivery.retry_delay(3, None, schedule, now) is None
