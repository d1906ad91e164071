"""Outbound webhooks: signed with Standard Webhooks (checked by the `standardwebhooks`
package, an independent implementation), retried, disabled on 410, never sent for a change
that rolled back, never sent into a private network."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from maxloyalty.identity.principal import Role
from maxloyalty.integrations.webhooks import service
from maxloyalty.integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from maxloyalty.integrations.webhooks.signing import sign
from maxloyalty.kit import events
from maxloyalty.kit.errors import AppError
from maxloyalty.runtime import Runtime
from maxloyalty.worker import run_worker
from tests.conftest import TokenFactory
from tests.factories import make_tenant
from tests.integrations.fake_http import Answer, FakeServer
from tests.test_app import assert_problem


async def drain(runtime: Runtime) -> None:
    await asyncio.wait_for(run_worker(runtime, asyncio.Event(), drain=True), timeout=60)


def test_signature_matches_the_spec_vector() -> None:
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


async def _endpoint(
    client: httpx.AsyncClient, admin: dict[str, str], url: str, types: list[str]
) -> dict[str, Any]:
    answer = await client.post(
        "/api/webhooks/endpoints", json={"url": url, "event_types": types}, headers=admin
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_events_arrive_signed_and_in_order(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = auth(Role.RESTAURANT_ADMIN, tenant.id)
    async with FakeServer() as receiver:
        hook = await _endpoint(
            client, admin, receiver.url + "/hook", ["restaurant.created", "restaurant.updated"]
        )
        assert hook["secret"].startswith("whsec_")
        created = await client.post(
            "/api/restaurants", json={"name": "Новый", "timezone": "UTC"}, headers=admin
        )
        await drain(runtime)
        await client.patch(
            f"/api/restaurants/{created.json()['id']}", json={"city": "Тула"}, headers=admin
        )
        await drain(runtime)
    verifier = Webhook(hook["secret"])
    types = []
    for request in receiver.requests:
        assert request.path == "/hook"
        payload = verifier.verify(request.body, request.headers)  # raises if forged
        types.append(payload["type"])
        assert request.headers["webhook-id"].startswith("msg_")
    assert types == ["restaurant.created", "restaurant.updated"]
    tampered = receiver.requests[0].body.replace(b"UTC", b"XYZ")
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, receiver.requests[0].headers)
    log = await client.get(f"/api/webhooks/endpoints/{hook['id']}/deliveries", headers=admin)
    assert [d["succeeded"] for d in log.json()] == [True, True]


async def test_failures_are_retried_and_410_disables(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = auth(Role.RESTAURANT_ADMIN, tenant.id)
    async with FakeServer() as receiver:
        receiver.script = [Answer(500), Answer(503)]
        hook = await _endpoint(client, admin, receiver.url, [])
        async with runtime.db.transaction(tenant.id) as session:
            await events.publish(session, tenant.id, "test.ping", {"n": 1})
        await drain(runtime)  # the retries come a second apart: drain waits for them
        assert len(receiver.requests) == 3
        async with runtime.db.transaction(tenant.id) as session:
            attempts = [
                (d.attempt, d.status_code, d.succeeded)
                for d in await session.scalars(
                    select(WebhookDelivery).order_by(WebhookDelivery.attempt)
                )
            ]
        assert attempts == [(1, 500, False), (2, 503, False), (3, 200, True)]

        receiver.answer = Answer(410)
        async with runtime.db.transaction(tenant.id) as session:
            await events.publish(session, tenant.id, "test.ping", {"n": 2})
        await drain(runtime)
        async with runtime.db.transaction(tenant.id) as session:
            endpoint = await session.get(WebhookEndpoint, hook["id"])
        assert endpoint is not None
        assert endpoint.is_active is False
        assert len(receiver.requests) == 4  # no retry after 410

        async with runtime.db.transaction(tenant.id) as session:
            last = await session.scalar(
                select(WebhookDelivery).order_by(WebhookDelivery.created_at.desc()).limit(1)
            )
        assert last is not None
        again = await client.post(f"/api/webhooks/deliveries/{last.id}/redeliver", headers=admin)
        assert_problem(again, 409, "webhook_endpoint_disabled")


async def test_rolled_back_change_sends_nothing(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = auth(Role.RESTAURANT_ADMIN, tenant.id)
    async with FakeServer() as receiver:
        await _endpoint(client, admin, receiver.url, [])
        async with runtime.db.session(tenant.id) as session:
            await events.publish(session, tenant.id, "test.ping", {"n": 1})
            await session.rollback()
        await drain(runtime)
    assert receiver.requests == []


async def test_private_targets_are_refused(runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    strict = runtime.settings.model_copy(update={"webhooks_allow_private": False})
    for url in (
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://localhost/x",
        "ftp://x",
    ):
        with pytest.raises(AppError) as refused:
            async with runtime.db.transaction(tenant.id) as session:
                await service.create_endpoint(session, strict, tenant.id, url, [], None)
        assert refused.value.code == "webhook_url_refused"


def test_retry_schedule_respects_retry_after() -> None:
    schedule = [5, 300]
    first = service.retry_delay(1, None, schedule)
    assert first is not None
    assert 4.5 <= first.total_seconds() <= 5.5
    later = service.retry_delay(1, "120", schedule)
    assert later is not None
    assert later.total_seconds() == 120
    assert service.retry_delay(3, None, schedule) is None
