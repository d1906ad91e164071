"""Tenant admins manage their restaurants' till integrations and read what the tills sent."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, Manager, TenantAdmin
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.integrations.pos import service
from maxloyalty.integrations.pos.errors import PosIntegrationNotFound
from maxloyalty.integrations.pos.models import (
    PosEvent,
    PosEventStatus,
    PosSync,
    PosTransaction,
    PosTransactionStatus,
    SyncStatus,
)
from maxloyalty.integrations.pos.schemas import (
    IntegrationIn,
    IntegrationOut,
    IntegrationPatch,
    IntegrationSecrets,
    PosEventOut,
    PosSyncOut,
    PosTransactionOut,
    RotateIn,
)
from maxloyalty.kit.errors import problem_responses
from maxloyalty.kit.pagination import Page, Paging
from maxloyalty.network.errors import RestaurantNotFound
from maxloyalty.runtime import runtime_of

router = APIRouter(
    prefix="/api/pos/integrations",
    tags=["pos"],
    responses=problem_responses(*SIGNED_IN_REFUSALS),
)
NOT_FOUND = problem_responses(PosIntegrationNotFound)


def _secrets(issued: service.IssuedIntegration) -> IntegrationSecrets:
    return IntegrationSecrets(
        **IntegrationOut.of(issued.integration).model_dump(),
        api_key=issued.key.key,
        signing_secret=issued.key.signing_secret,
        webhook_token=issued.webhook_token,
    )


@router.post("", status_code=201, responses=problem_responses(RestaurantNotFound))
async def create_integration(
    body: IntegrationIn, admin: TenantAdmin, session: TenantSession, request: Request
) -> IntegrationSecrets:
    """Connect a till system to a restaurant; the answer carries its secrets, once."""
    assert admin.tenant_id is not None
    issued = await service.create(
        session,
        runtime_of(request).api_key_key,
        tenant_id=admin.tenant_id,
        restaurant_id=body.restaurant_id,
        system=body.system,
        name=body.name,
        credentials=body.credentials.model_dump(exclude_none=True) if body.credentials else None,
        external_id=body.external_id,
        settings=body.settings.model_dump(mode="json", exclude_none=True),
        hold_ttl_seconds=body.hold_ttl_seconds,
        require_signature=body.require_signature,
        created_by=admin.subject,
    )
    return _secrets(issued)


@router.get("")
async def list_integrations(
    reader: Manager,
    session: TenantSession,
    paging: Paging,
    restaurant_id: uuid.UUID | None = None,
) -> Page[IntegrationOut]:
    rows, cursor = await service.list_integrations(session, reader, paging, restaurant_id)
    return Page(items=[IntegrationOut.of(r) for r in rows], next_cursor=cursor)


@router.get("/{integration_id}", responses=NOT_FOUND)
async def get_integration(
    integration_id: uuid.UUID, reader: Manager, session: TenantSession
) -> IntegrationOut:
    return IntegrationOut.of(await service.get(session, integration_id, reader))


@router.patch("/{integration_id}", responses=NOT_FOUND)
async def update_integration(
    integration_id: uuid.UUID,
    body: IntegrationPatch,
    _admin: TenantAdmin,
    session: TenantSession,
) -> IntegrationOut:
    """Switched off, the integration's key stops working everywhere within a second;
    `credentials: null` removes the iikoCloud credentials."""
    credentials: str | service.Unchanged | None = service.UNCHANGED
    if "credentials" in body.model_fields_set:
        given = body.credentials
        credentials = given.model_dump_json(exclude_none=True) if given is not None else None
    changes = body.model_dump(mode="json", exclude_unset=True, exclude={"credentials"})
    row = await service.update_integration(session, integration_id, changes, credentials)
    return IntegrationOut.of(row)


@router.post("/{integration_id}/rotate-secrets", responses=NOT_FOUND)
async def rotate_secrets(
    integration_id: uuid.UUID,
    body: RotateIn,
    admin: TenantAdmin,
    session: TenantSession,
    request: Request,
) -> IntegrationSecrets:
    """A new API key (the old one stops working now) and, for iiko, a new webhook token."""
    row = await service.get(session, integration_id)
    issued = await service.rotate(
        session,
        runtime_of(request).api_key_key,
        row,
        require_signature=body.require_signature,
        created_by=admin.subject,
    )
    return _secrets(issued)


@router.get("/{integration_id}/transactions", responses=NOT_FOUND)
async def list_transactions(
    integration_id: uuid.UUID,
    reader: Manager,
    session: TenantSession,
    paging: Paging,
    status: PosTransactionStatus | None = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[PosTransactionOut]:
    """The checks the till posted (and those refused), newest first."""
    rows, cursor = await service.log_page(
        session, PosTransaction, integration_id, reader, paging, status=status, order_id=order_id
    )
    return Page(items=[PosTransactionOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/{integration_id}/events", responses=NOT_FOUND)
async def list_events(
    integration_id: uuid.UUID,
    reader: Manager,
    session: TenantSession,
    paging: Paging,
    status: PosEventStatus | None = None,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[PosEventOut]:
    """The vendor's webhook events as they came, less the guest's personal fields (kept
    encrypted apart), newest first."""
    rows, cursor = await service.log_page(
        session, PosEvent, integration_id, reader, paging, status=status, event_type=event_type
    )
    return Page(items=[PosEventOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/{integration_id}/syncs", responses=NOT_FOUND)
async def list_syncs(
    integration_id: uuid.UUID,
    reader: Manager,
    session: TenantSession,
    paging: Paging,
    status: SyncStatus | None = None,
) -> Page[PosSyncOut]:
    """Our calls to the vendor's cloud, newest first."""
    rows, cursor = await service.log_page(
        session, PosSync, integration_id, reader, paging, status=status
    )
    return Page(items=[PosSyncOut.model_validate(r) for r in rows], next_cursor=cursor)
