"""Webhook endpoints of a tenant, their delivery log, and manual redelivery."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from maxloyalty.audit.service import record
from maxloyalty.identity.dependencies import Authorize, TenantSession
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.integrations.webhooks import service
from maxloyalty.integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from maxloyalty.kit.errors import problem_responses
from maxloyalty.runtime import runtime_of

router = APIRouter(tags=["webhooks"], responses=problem_responses(401, 403, 404, 422))
Admin = Annotated[Principal, Depends(Authorize(Role.RESTAURANT_ADMIN))]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000)
    event_types: list[str] = Field(default=[], max_length=50, description="Empty: all")
    description: str | None = Field(default=None, max_length=500)


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    is_active: bool
    disabled_reason: str | None
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="whsec_…: shown once; verify our signatures with it")


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int | None
    succeeded: bool
    next_attempt_at: datetime | None
    created_at: datetime


@router.post("/api/webhooks/endpoints", status_code=201)
async def create_endpoint(
    body: EndpointIn, admin: Admin, session: TenantSession, request: Request
) -> EndpointCreated:
    assert admin.tenant_id is not None
    created = await service.create_endpoint(
        session,
        runtime_of(request).settings,
        admin.tenant_id,
        body.url,
        body.event_types,
        body.description,
    )
    await session.commit()
    return EndpointCreated(
        **EndpointOut.model_validate(created).model_dump(), secret=created.secret
    )


@router.get("/api/webhooks/endpoints")
async def list_endpoints(_admin: Admin, session: TenantSession) -> list[EndpointOut]:
    rows = await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at))
    return [EndpointOut.model_validate(r) for r in rows]


@router.delete("/api/webhooks/endpoints/{endpoint_id}")
async def disable_endpoint(
    endpoint_id: uuid.UUID, _admin: Admin, session: TenantSession
) -> EndpointOut:
    target = await service.endpoint(session, endpoint_id)
    target.is_active, target.disabled_reason = False, "disabled by an admin"
    await session.flush()
    await record(session, "webhook.endpoint_disabled", "webhook_endpoint", target.id)
    await session.commit()
    return EndpointOut.model_validate(target)


@router.get("/api/webhooks/endpoints/{endpoint_id}/deliveries")
async def list_deliveries(
    endpoint_id: uuid.UUID, _admin: Admin, session: TenantSession
) -> list[DeliveryOut]:
    await service.endpoint(session, endpoint_id)
    rows = await session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.created_at.desc())
        .limit(200)
    )
    return [DeliveryOut.model_validate(r) for r in rows]


@router.post(
    "/api/webhooks/deliveries/{delivery_id}/redeliver",
    status_code=202,
    responses=problem_responses(409),
)
async def redeliver(delivery_id: uuid.UUID, _admin: Admin, session: TenantSession) -> DeliveryOut:
    row = await service.redeliver(session, delivery_id)
    await session.commit()
    return DeliveryOut.model_validate(row)
