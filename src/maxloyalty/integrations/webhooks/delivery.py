"""Delivering outbox events to tenants' endpoints, each endpoint's in the order they happened.

`fan_out`, an outbox handler, runs in the transaction that marks the event delivered: it
records a PENDING delivery for every active endpoint that wants the event and wakes that
endpoint's drain job. A drain sends the endpoint's oldest pending delivery (events ordered by
`created_at`, then id) and only then the next one. It sends under a per-endpoint advisory
lock, so an endpoint never has two requests in flight; a drain that finds the lock taken
leaves, and the holder looks at the queue again after releasing it.

A failure is retried on the spec's schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h,
24 h; ±10 % jitter, or later if the receiver sends Retry-After) while the later deliveries
wait behind it; when the schedule runs out the delivery is FAILED (given up) and the next one
goes. 410 Gone disables the endpoint, and its pending deliveries wait until it is enabled
again. The event id is the `webhook-id`, so a receiver can drop the duplicates at-least-once
delivery may bring. Every HTTP attempt is a `WebhookLog` row.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import structlog
from sqlalchemy import any_, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.config import Settings
from maxloyalty.integrations.webhooks.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookLog,
)
from maxloyalty.integrations.webhooks.signing import signature_header
from maxloyalty.kit import events, jobs
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.events import EventStatus, IntegrationEvent
from maxloyalty.kit.ids import uuid7
from maxloyalty.kit.ssrf import TargetRefused, resolve
from maxloyalty.kit.timestamps import rfc3339

log = structlog.get_logger(__name__)

DRAIN_JOB = "webhooks.drain"
SWEEP_JOB = "webhooks.sweep"
TIMEOUT_SECONDS = 15.0
MAX_RESPONSE_BYTES = 2000  # of a receiver's answer, kept in the log
MAX_RETRY_AFTER = timedelta(days=1)  # the schedule's longest gap


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        digits = value.lstrip("0")
        # Long numbers are past the cap anyway (and int() refuses thousands of digits).
        if len(digits) > 6:
            return MAX_RETRY_AFTER
        return min(timedelta(seconds=int(digits or "0")), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC with no claim about the sender's zone
        when = when.replace(tzinfo=UTC)
    return min(when - now, MAX_RETRY_AFTER)


def retry_delay(
    attempt: int, retry_after: str | None, schedule: list[int], now: datetime
) -> timedelta | None:
    """When to try again after failed attempt number `attempt` (1-based); None: give up."""
    if attempt > len(schedule):
        return None
    delay = timedelta(seconds=schedule[attempt - 1] * random.uniform(0.9, 1.1))  # noqa: S311 - jitter only
    asked = _retry_after(retry_after, now)
    return delay if asked is None else max(delay, asked)


async def wake(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    delay: timedelta | None = None,
    dedupe_key: str | None = None,
) -> None:
    """Have a drain look at the endpoint's queue once `session` commits (after `delay`).

    Wake-ups carry no dedupe key of their own: PgQueuer keeps a key taken while its job
    runs, so a wake-up enqueued as a drain finishes would be dropped and its delivery left
    waiting. Extra wake-ups cost a lock attempt each."""
    await jobs.enqueue(
        session,
        DRAIN_JOB,
        {"tenant_id": str(tenant_id), "endpoint_id": str(endpoint_id)},
        delay=delay,
        dedupe_key=dedupe_key,
    )


async def fan_out(session: AsyncSession, event: IntegrationEvent) -> None:
    """Outbox handler for every event type: a pending delivery per interested endpoint."""
    targets = [
        target
        for target in await session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.is_active.is_(True))
        )
        if not target.event_types or event.event_type in target.event_types
    ]
    if not targets:
        return
    created = await session.scalars(
        insert(WebhookDelivery)
        .values(
            [
                {
                    "id": uuid7(),
                    "tenant_id": event.tenant_id,
                    "endpoint_id": target.id,
                    "event_id": event.id,
                    "event_type": event.event_type,
                    "event_created_at": event.created_at,
                    "status": DeliveryStatus.PENDING,
                    "attempts": 0,
                    "created_at": utcnow(),
                }
                for target in targets
            ]
        )
        .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])  # handlers rerun
        .returning(WebhookDelivery.endpoint_id)
    )
    for endpoint_id in created.all():
        await wake(session, event.tenant_id, endpoint_id)


def _body(event: IntegrationEvent) -> bytes:
    return json.dumps(
        {
            "type": event.event_type,
            "timestamp": rfc3339(event.created_at),
            "data": event.payload,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def _signing_secrets(target: WebhookEndpoint) -> list[str]:
    keys = [target.secret]
    expires = target.previous_secret_expires_at
    if target.previous_secret and expires and expires > utcnow():
        keys.append(target.previous_secret)
    return keys


@dataclass(frozen=True)
class _Answer:
    status: int | None = None
    text: str = ""
    retry_after: str | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def _post(settings: Settings, target: WebhookEndpoint, event: IntegrationEvent) -> _Answer:
    """One HTTP attempt. The name is resolved and checked once, and the request goes to that
    address, naming the host in `Host` and in TLS (SNI, certificate check): a second lookup
    (DNS rebinding) has no say. Redirects are not followed; environment proxies are not used,
    since they would look the name up again."""
    try:
        pinned = await resolve(target.url, allow_private=settings.webhooks_allow_private)
    except TargetRefused as refused:  # the name now resolves somewhere private: never connect
        return _Answer(error=str(refused))
    body = _body(event)
    msg_id = f"msg_{event.id.hex}"
    now = int(time.time())
    try:
        url = httpx.URL(target.url)  # checked at registration; a row from before may not be
        headers = {
            "host": url.netloc.decode("ascii"),
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(now),
            "webhook-signature": signature_header(_signing_secrets(target), msg_id, now, body),
            "user-agent": "MaxLoyalty-Webhooks/1",
            "accept-encoding": "identity",  # the log keeps the answer as it came
        }
        async with (
            httpx.AsyncClient(
                timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
            ) as client,
            client.stream(
                "POST",
                url.copy_with(host=str(pinned.address)),
                content=body,
                headers=headers,
                extensions={"sni_hostname": url.raw_host.decode("ascii")},
            ) as answer,
        ):
            # Only the start of the body is kept, read as UTF-8 whatever the receiver
            # claims: a charset Python cannot decode must not fail the attempt's record.
            start = b""
            async for chunk in answer.aiter_raw():
                start += chunk
                if len(start) >= MAX_RESPONSE_BYTES:
                    break
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _Answer(error=f"{type(exc).__name__}: {exc}"[:1000])
    text = start[:MAX_RESPONSE_BYTES].decode("utf-8", errors="replace")
    return _Answer(answer.status_code, text, answer.headers.get("retry-after"))


@dataclass(frozen=True)
class _Head:
    delivery: WebhookDelivery
    endpoint: WebhookEndpoint
    blocked: bool  # an older event is still in the outbox: it may become a delivery ahead


async def _head(
    session: AsyncSession, endpoint_id: uuid.UUID, *, lock: bool = False
) -> _Head | None:
    """The endpoint's oldest pending delivery, when it is due and the endpoint active.

    Outbox deliveries run concurrently, so a later event's fan-out may commit before an
    earlier one's: the head is held back while an older event the endpoint would want is
    still PENDING. One statement reads both, from one snapshot, so no fan-out can commit
    between them."""
    outbox_attempts = jobs.registry.jobs[events.DELIVER_JOB].max_attempts
    older_in_outbox = (
        select(IntegrationEvent.id)
        .where(
            IntegrationEvent.status == EventStatus.PENDING,
            # An event the outbox has given up on holds nothing back.
            IntegrationEvent.attempts < outbox_attempts,
            tuple_(IntegrationEvent.created_at, IntegrationEvent.id)
            < tuple_(WebhookDelivery.event_created_at, WebhookDelivery.event_id),
            or_(
                func.cardinality(WebhookEndpoint.event_types) == 0,
                IntegrationEvent.event_type == any_(WebhookEndpoint.event_types),
            ),
        )
        .exists()
    )
    due = or_(
        WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= func.now()
    )
    query = (
        select(WebhookDelivery, WebhookEndpoint, older_in_outbox, due)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookEndpoint.is_active.is_(True),
        )
        .order_by(WebhookDelivery.event_created_at, WebhookDelivery.event_id)
        .limit(1)
    )
    if lock:
        query = query.with_for_update(of=WebhookDelivery)  # against a redelivery meanwhile
    row = (await session.execute(query)).first()
    if row is None or not row[3]:
        return None  # nothing pending, endpoint disabled, or the head's retry is not due
    return _Head(row[0], row[1], bool(row[2]))


async def _send(session: AsyncSession, settings: Settings, head: _Head) -> None:
    delivery, target = head.delivery, head.endpoint
    event = await session.get_one(IntegrationEvent, delivery.event_id)
    started = time.perf_counter()
    answer = await _post(settings, target, event)
    duration_ms = int((time.perf_counter() - started) * 1000)
    delivery.attempts, delivery.next_attempt_at = delivery.attempts + 1, None
    if answer.succeeded:
        delivery.status, delivery.finished_at = DeliveryStatus.SENT, utcnow()
    elif answer.status == 410:
        target.is_active, target.disabled_reason = False, "410 Gone from the receiver"
        log.info("webhook_endpoint_disabled", endpoint=str(target.id))
    elif (
        delay := retry_delay(
            delivery.attempts, answer.retry_after, settings.webhook_retry_schedule, utcnow()
        )
    ) is not None:
        # The job queue schedules from the transaction's start (NOW() + delay), and the
        # request took a while since: count the delay from now, and record the job's due time.
        began, clock = (await session.execute(select(func.now(), func.clock_timestamp()))).one()
        wait = clock - began + delay
        delivery.next_attempt_at = began + wait
        await wake(session, target.tenant_id, target.id, delay=wait)
    else:
        delivery.status, delivery.finished_at = DeliveryStatus.FAILED, utcnow()
        log.info("webhook_delivery_failed", endpoint=str(target.id), event_id=str(event.id))
    session.add(  # last: the log is append-only, so the row is written once, complete
        WebhookLog(
            tenant_id=target.tenant_id,
            delivery_id=delivery.id,
            endpoint_id=target.id,
            event_id=event.id,
            event_type=event.event_type,
            attempt=delivery.attempts,
            status_code=answer.status,
            error=answer.error,
            response_body=answer.text or None,
            duration_ms=duration_ms,
            succeeded=answer.succeeded,
            next_attempt_at=delivery.next_attempt_at,
        )
    )


async def _step(session: AsyncSession, settings: Settings, endpoint_id: uuid.UUID) -> bool:
    """Send the endpoint's next delivery if one is due. False when the queue is in other
    hands: a drain holding the lock (it looks again after releasing it), or an older event's
    fan-out to come (it wakes a drain)."""
    locked = await session.scalar(
        select(func.pg_try_advisory_xact_lock(func.hashtextextended(f"webhook:{endpoint_id}", 0)))
    )
    if not locked:
        return False
    head = await _head(session, endpoint_id, lock=True)
    if head is None:
        return True
    if head.blocked:
        return False
    await _send(session, settings, head)
    return True


async def drain(ctx: jobs.JobContext, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    """Send the endpoint's due deliveries one by one, each in its own transaction."""
    while True:
        async with ctx.db.transaction(tenant_id) as session:
            if not await _step(session, ctx.settings, endpoint_id):
                return
        # Look again with the lock released: a wake-up that found it taken counted on us.
        async with ctx.db.transaction(tenant_id) as session:
            if await _head(session, endpoint_id) is None:
                return


async def wake_stalled(ctx: jobs.JobContext) -> None:
    """Wake every endpoint whose next delivery has been due for over a minute: the safety
    net for a wake-up that never came (a drain job that failed for good, an older event the
    outbox gave up on)."""
    overdue = func.coalesce(WebhookDelivery.next_attempt_at, WebhookDelivery.created_at)
    async with ctx.db.platform_session() as platform:  # reads ids across tenants, nothing else
        stalled = (
            await platform.execute(
                select(WebhookDelivery.tenant_id, WebhookDelivery.endpoint_id)
                .distinct()
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                    WebhookEndpoint.is_active.is_(True),
                    overdue < func.now() - timedelta(minutes=1),
                )
            )
        ).all()
    async with ctx.db.transaction() as session:
        for tenant_id, endpoint_id in stalled:
            await wake(session, tenant_id, endpoint_id, dedupe_key=f"{SWEEP_JOB}:{endpoint_id}")
