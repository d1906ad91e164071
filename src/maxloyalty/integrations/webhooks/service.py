"""Tenants' webhook endpoints: registering, changing, disabling them, rotating their
secrets, and sending a logged event again (the sending itself is `delivery.py`)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.config import Settings
from maxloyalty.integrations.webhooks.delivery import wake
from maxloyalty.integrations.webhooks.errors import (
    UnknownEventType,
    WebhookDeliveryNotFound,
    WebhookEndpointDisabled,
    WebhookEndpointNotFound,
    WebhookUrlRefused,
)
from maxloyalty.integrations.webhooks.event_types import EVENT_TYPES
from maxloyalty.integrations.webhooks.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookLog,
)
from maxloyalty.integrations.webhooks.schemas import EndpointIn, EndpointPatch
from maxloyalty.integrations.webhooks.signing import new_secret
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.pagination import PageParams, make_page, paginate, paginate_newest
from maxloyalty.kit.ssrf import TargetRefused, check_target
from maxloyalty.kit.timestamps import rfc3339_or_none


def _known_event_types(event_types: list[str]) -> list[str]:
    unknown = sorted(set(event_types) - EVENT_TYPES.keys())
    if unknown:
        raise UnknownEventType(
            f"Unknown event types: {', '.join(unknown)} (GET /api/webhooks/event-types)."
        )
    return sorted(set(event_types))


async def _checked_url(settings: Settings, url: str) -> str:
    try:
        httpx.URL(url)  # what delivery will parse it with
    except httpx.InvalidURL as exc:
        raise WebhookUrlRefused(str(exc)) from exc
    try:
        await check_target(url, allow_private=settings.webhooks_allow_private)
    except TargetRefused as refused:
        raise WebhookUrlRefused(str(refused)) from refused
    return url


def _audit_view(endpoint: WebhookEndpoint) -> dict[str, object]:
    """What the activity log keeps of an endpoint: never its secrets."""
    return {
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "description": endpoint.description,
        "is_active": endpoint.is_active,
        "disabled_reason": endpoint.disabled_reason,
    }


async def create_endpoint(
    session: AsyncSession, settings: Settings, tenant_id: uuid.UUID, body: EndpointIn
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        tenant_id=tenant_id,
        url=await _checked_url(settings, body.url),
        event_types=_known_event_types(body.event_types),
        secret=new_secret(),
        description=body.description,
    )
    session.add(endpoint)
    await session.flush()
    await record(
        session,
        "webhook.endpoint_created",
        "webhook_endpoint",
        endpoint.id,
        after=_audit_view(endpoint),
    )
    return endpoint


async def endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    found = await session.get(WebhookEndpoint, endpoint_id)
    if found is None:
        raise WebhookEndpointNotFound()
    return found


async def list_endpoints(
    session: AsyncSession, paging: PageParams
) -> tuple[list[WebhookEndpoint], str | None]:
    query = paginate(select(WebhookEndpoint), WebhookEndpoint.id, paging)
    return make_page(list(await session.scalars(query)), paging)


async def list_attempts(
    session: AsyncSession, endpoint_id: uuid.UUID, paging: PageParams, succeeded: bool | None
) -> tuple[list[WebhookLog], str | None]:
    """The endpoint's HTTP attempts, newest first (only those that succeeded, or failed)."""
    await endpoint(session, endpoint_id)
    query = select(WebhookLog).where(WebhookLog.endpoint_id == endpoint_id)
    if succeeded is not None:
        query = query.where(WebhookLog.succeeded.is_(succeeded))
    found = list(await session.scalars(paginate_newest(query, WebhookLog.id, paging)))
    return make_page(found, paging)


async def update_endpoint(
    session: AsyncSession, settings: Settings, endpoint_id: uuid.UUID, patch: EndpointPatch
) -> WebhookEndpoint:
    """Change what was given. Enabling a disabled endpoint (an admin's or a 410's doing)
    resumes its queue: the deliveries left pending go out in order, each with a fresh retry
    schedule."""
    target = await endpoint(session, endpoint_id)
    before = _audit_view(target)
    given = patch.model_fields_set
    if patch.url is not None:
        target.url = await _checked_url(settings, patch.url)
    if patch.event_types is not None:
        target.event_types = _known_event_types(patch.event_types)
    if "description" in given:
        target.description = patch.description
    if patch.is_active is False and target.is_active:
        target.is_active, target.disabled_reason = False, "disabled by an admin"
    elif patch.is_active and not target.is_active:
        target.is_active, target.disabled_reason = True, None
        # SKIP LOCKED: a drain may hold the head delivery while its request is out, and
        # on a 410 it would wait for this endpoint row in turn (a deadlock); the one it
        # holds gets its schedule from that attempt.
        pending = (
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.endpoint_id == target.id,
                WebhookDelivery.status == DeliveryStatus.PENDING,
            )
            .with_for_update(skip_locked=True)
        )
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(pending))
            .values(attempts=0, next_attempt_at=None)
        )
    await session.flush()
    await record(
        session,
        "webhook.endpoint_updated",
        "webhook_endpoint",
        target.id,
        before=before,
        after=_audit_view(target),
    )
    await wake(session, target.tenant_id, target.id)  # resumed, or subscribed differently
    return target


async def disable_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    target = await endpoint(session, endpoint_id)
    target.is_active, target.disabled_reason = False, "disabled by an admin"
    await session.flush()
    await record(session, "webhook.endpoint_disabled", "webhook_endpoint", target.id)
    return target


async def rotate_secret(
    session: AsyncSession, endpoint_id: uuid.UUID, grace: timedelta
) -> WebhookEndpoint:
    """A new secret; for `grace` the old one signs alongside it (a second signature in
    `webhook-signature`), so the receiver can switch without rejecting anything."""
    target = await endpoint(session, endpoint_id)
    keep = grace > timedelta(0)
    target.previous_secret = target.secret if keep else None
    target.previous_secret_expires_at = utcnow() + grace if keep else None
    target.secret = new_secret()
    await session.flush()
    expires = target.previous_secret_expires_at
    await record(
        session,
        "webhook.secret_rotated",
        "webhook_endpoint",
        target.id,
        after={"previous_secret_expires_at": rfc3339_or_none(expires)},
    )
    return target


async def redeliver(session: AsyncSession, log_id: uuid.UUID) -> WebhookDelivery:
    """Send the event of a logged attempt again, with a fresh retry schedule. It goes back
    into the endpoint's queue at its event's place: before newer pending events, after
    older ones (usually at once)."""
    attempt = await session.get(WebhookLog, log_id)
    if attempt is None:
        raise WebhookDeliveryNotFound()
    target = await endpoint(session, attempt.endpoint_id)
    if not target.is_active:
        raise WebhookEndpointDisabled()
    # Waits for a send of this very delivery to finish, rather than be overwritten by it.
    delivery = await session.get_one(WebhookDelivery, attempt.delivery_id, with_for_update=True)
    delivery.status, delivery.attempts = DeliveryStatus.PENDING, 0
    delivery.next_attempt_at = delivery.finished_at = None
    await session.flush()
    await record(session, "webhook.redelivered", "webhook_delivery", delivery.id)
    await wake(session, target.tenant_id, target.id)
    return delivery
