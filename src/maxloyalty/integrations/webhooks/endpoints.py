"""Webhook endpoints of a tenant, their delivery log, and manual redelivery."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Request

from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, TenantAdmin
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.integrations.webhooks import service
from maxloyalty.integrations.webhooks.errors import (
    UnknownEventType,
    WebhookDeliveryNotFound,
    WebhookEndpointDisabled,
    WebhookEndpointNotFound,
    WebhookUrlRefused,
)
from maxloyalty.integrations.webhooks.event_types import EVENT_TYPES
from maxloyalty.integrations.webhooks.models import WebhookEndpoint
from maxloyalty.integrations.webhooks.schemas import (
    DeliveryOut,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EventTypeOut,
    RedeliveryOut,
    RotateIn,
)
from maxloyalty.kit.errors import problem_responses
from maxloyalty.kit.pagination import Page, Paging
from maxloyalty.runtime import runtime_of

router = APIRouter(tags=["webhooks"], responses=problem_responses(*SIGNED_IN_REFUSALS))
NOT_FOUND = problem_responses(WebhookEndpointNotFound)


def _with_secret(endpoint: WebhookEndpoint) -> EndpointCreated:
    return EndpointCreated(
        **EndpointOut.model_validate(endpoint).model_dump(), secret=endpoint.secret
    )


@router.get("/api/webhooks/event-types")
async def event_types(_admin: TenantAdmin) -> Page[EventTypeOut]:
    """The whole catalogue in one page (it is small and fixed)."""
    return Page(items=[EventTypeOut(type=n, description=text) for n, text in EVENT_TYPES.items()])


@router.post(
    "/api/webhooks/endpoints",
    status_code=201,
    responses=problem_responses(WebhookUrlRefused, UnknownEventType),
)
async def create_endpoint(
    body: EndpointIn, admin: TenantAdmin, session: TenantSession, request: Request
) -> EndpointCreated:
    assert admin.tenant_id is not None
    created = await service.create_endpoint(
        session, runtime_of(request).settings, admin.tenant_id, body
    )
    return _with_secret(created)


@router.get("/api/webhooks/endpoints")
async def list_endpoints(
    _admin: TenantAdmin, session: TenantSession, paging: Paging
) -> Page[EndpointOut]:
    rows, cursor = await service.list_endpoints(session, paging)
    return Page(items=[EndpointOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.patch(
    "/api/webhooks/endpoints/{endpoint_id}",
    responses=problem_responses(WebhookEndpointNotFound, WebhookUrlRefused, UnknownEventType),
)
async def update_endpoint(
    endpoint_id: uuid.UUID,
    body: EndpointPatch,
    _admin: TenantAdmin,
    session: TenantSession,
    request: Request,
) -> EndpointOut:
    target = await service.update_endpoint(session, runtime_of(request).settings, endpoint_id, body)
    return EndpointOut.model_validate(target)


@router.post("/api/webhooks/endpoints/{endpoint_id}/rotate-secret", responses=NOT_FOUND)
async def rotate_secret(
    endpoint_id: uuid.UUID,
    _admin: TenantAdmin,
    session: TenantSession,
    body: Annotated[RotateIn | None, Body()] = None,
) -> EndpointCreated:
    """A new secret, shown once; the old one keeps signing alongside it for `grace_hours`."""
    grace = timedelta(hours=(body or RotateIn()).grace_hours)
    target = await service.rotate_secret(session, endpoint_id, grace)
    return _with_secret(target)


@router.delete("/api/webhooks/endpoints/{endpoint_id}", responses=NOT_FOUND)
async def disable_endpoint(
    endpoint_id: uuid.UUID, _admin: TenantAdmin, session: TenantSession
) -> EndpointOut:
    target = await service.disable_endpoint(session, endpoint_id)
    return EndpointOut.model_validate(target)


@router.get("/api/webhooks/endpoints/{endpoint_id}/deliveries", responses=NOT_FOUND)
async def list_deliveries(
    endpoint_id: uuid.UUID,
    _admin: TenantAdmin,
    session: TenantSession,
    paging: Paging,
    succeeded: bool | None = None,
) -> Page[DeliveryOut]:
    """Every HTTP attempt, newest first."""
    rows, cursor = await service.list_attempts(session, endpoint_id, paging, succeeded)
    return Page(items=[DeliveryOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/api/webhooks/deliveries/{delivery_id}/redeliver",
    status_code=202,
    responses=problem_responses(
        WebhookDeliveryNotFound, WebhookEndpointNotFound, WebhookEndpointDisabled
    ),
)
async def redeliver(
    delivery_id: uuid.UUID, _admin: TenantAdmin, session: TenantSession
) -> RedeliveryOut:
    """Send the event of this logged attempt again, with a fresh retry schedule, in its
    place in the endpoint's order (ahead of newer pending events)."""
    delivery = await service.redeliver(session, delivery_id)
    return RedeliveryOut.model_validate(delivery)
