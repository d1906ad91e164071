"""Delivering outbox events to tenants' endpoints.

The outbox delivery (one transaction) fans an event out into one delivery job per matching
endpoint. A delivery POSTs `{"type", "timestamp", "data"}` with the Standard Webhooks
headers; every attempt is logged. A failure is retried on the spec's schedule (5 s, 5 min,
30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h) with ±10 % jitter, or later if the receiver sends
`Retry-After`; 410 Gone disables the endpoint. The event id is the `webhook-id`, so a
receiver can drop the duplicates at-least-once delivery may bring.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import timedelta

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.config import Settings
from maxloyalty.integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from maxloyalty.integrations.webhooks.signing import new_secret, sign
from maxloyalty.integrations.webhooks.ssrf import check_target
from maxloyalty.kit import events, jobs
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import AppError, NotFound
from maxloyalty.kit.events import IntegrationEvent

log = structlog.get_logger(__name__)

DELIVER_JOB = "webhooks.deliver"
TIMEOUT_SECONDS = 15.0


def retry_delay(attempt: int, retry_after: str | None, schedule: list[int]) -> timedelta | None:
    """When to try again after failed attempt number `attempt` (1-based); None: give up."""
    if attempt > len(schedule):
        return None
    delay = schedule[attempt - 1] * random.uniform(0.9, 1.1)  # noqa: S311 - jitter only
    if retry_after and retry_after.isdigit():
        delay = max(delay, min(int(retry_after), 86400))
    return timedelta(seconds=delay)


async def create_endpoint(
    session: AsyncSession,
    settings: Settings,
    tenant_id: uuid.UUID,
    url: str,
    event_types: list[str],
    description: str | None,
) -> WebhookEndpoint:
    await check_target(url, allow_private=settings.webhooks_allow_private)
    endpoint = WebhookEndpoint(
        tenant_id=tenant_id,
        url=url,
        event_types=sorted(set(event_types)),
        secret=new_secret(),
        description=description,
    )
    session.add(endpoint)
    await session.flush()
    await record(
        session, "webhook.endpoint_created", "webhook_endpoint", endpoint.id, after={"url": url}
    )
    return endpoint


async def endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    found = await session.get(WebhookEndpoint, endpoint_id)
    if found is None:
        raise NotFound("No such webhook endpoint.", code="webhook_endpoint_not_found")
    return found


async def fan_out(session: AsyncSession, event: IntegrationEvent) -> None:
    """Outbox handler for every event type: one delivery job per interested endpoint."""
    targets = await session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.is_active.is_(True))
    )
    for target in targets:
        if target.event_types and event.event_type not in target.event_types:
            continue
        await jobs.enqueue(
            session,
            DELIVER_JOB,
            {
                "tenant_id": str(event.tenant_id),
                "endpoint_id": str(target.id),
                "event_id": str(event.id),
                "attempt": 1,
            },
        )


events.subscribe_all(fan_out)


def _body(event: IntegrationEvent) -> bytes:
    return json.dumps(
        {
            "type": event.event_type,
            "timestamp": event.created_at.isoformat(),
            "data": event.payload,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


async def _post(
    settings: Settings, target: WebhookEndpoint, event: IntegrationEvent
) -> tuple[int | None, str, str | None, str | None]:
    """(status, response text, Retry-After, error) of one HTTP attempt."""
    await check_target(target.url, allow_private=settings.webhooks_allow_private)
    body = _body(event)
    msg_id = f"msg_{event.id.hex}"
    now = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(now),
        "webhook-signature": sign(target.secret, msg_id, now, body),
        "user-agent": "MaxLoyalty-Webhooks/1",
    }
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
            answer = await client.post(target.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, "", None, f"{type(exc).__name__}: {exc}"[:1000]
    return answer.status_code, answer.text[:2000], answer.headers.get("retry-after"), None


async def deliver(db_session: AsyncSession, settings: Settings, payload: jobs.Payload) -> None:
    endpoint_id, event_id = uuid.UUID(payload["endpoint_id"]), uuid.UUID(payload["event_id"])
    attempt = int(payload["attempt"])
    target = await db_session.get(WebhookEndpoint, endpoint_id)
    event = await db_session.get(IntegrationEvent, event_id)
    if target is None or event is None or not target.is_active:
        return
    started = time.perf_counter()
    try:
        status, text, retry_after, error = await _post(settings, target, event)
    except AppError as refused:  # the URL now resolves somewhere private: never send
        status, text, retry_after, error = None, "", None, refused.detail
    succeeded = status is not None and 200 <= status < 300
    row = WebhookDelivery(
        tenant_id=target.tenant_id,
        endpoint_id=target.id,
        event_id=event.id,
        event_type=event.event_type,
        attempt=attempt,
        status_code=status,
        error=error,
        response_body=text or None,
        duration_ms=int((time.perf_counter() - started) * 1000),
        succeeded=succeeded,
    )
    db_session.add(row)
    if succeeded:
        return
    if status == 410:
        target.is_active = False
        target.disabled_reason = "410 Gone from the receiver"
        log.info("webhook_endpoint_disabled", endpoint=str(target.id))
        return
    delay = retry_delay(attempt, retry_after, settings.webhook_retry_schedule)
    if delay is None:
        return
    row.next_attempt_at = utcnow() + delay
    await jobs.enqueue(db_session, DELIVER_JOB, payload | {"attempt": attempt + 1}, delay=delay)


@jobs.registry.job(DELIVER_JOB, max_attempts=3)
async def deliver_job(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    async with ctx.db.transaction(uuid.UUID(payload["tenant_id"])) as session:
        await deliver(session, ctx.settings, payload)


async def redeliver(session: AsyncSession, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a logged event to its endpoint again, now (a fresh attempt series)."""
    row = await session.get(WebhookDelivery, delivery_id)
    if row is None:
        raise NotFound("No such delivery.", code="webhook_delivery_not_found")
    target = await endpoint(session, row.endpoint_id)
    if not target.is_active:
        raise AppError("The endpoint is disabled.", code="webhook_endpoint_disabled", status=409)
    await jobs.enqueue(
        session,
        DELIVER_JOB,
        {
            "tenant_id": str(row.tenant_id),
            "endpoint_id": str(row.endpoint_id),
            "event_id": str(row.event_id),
            "attempt": 1,
        },
    )
    await record(session, "webhook.redelivered", "webhook_delivery", row.id)
    return row
