"""Tenant admins manage their restaurants' till integrations and read what the tills sent."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.identity.auth import Manager, TenantAdmin
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.integrations.pos import service
from maxloyalty.integrations.pos.models import (
    PosEvent,
    PosEventStatus,
    PosIntegration,
    PosSync,
    PosSystem,
    PosTransaction,
    PosTransactionStatus,
    SyncStatus,
)
from maxloyalty.kit.errors import problem_responses
from maxloyalty.kit.pagination import (
    Page,
    PageParams,
    Paging,
    make_page,
    paginate,
    paginate_newest,
)
from maxloyalty.kit.timestamps import Timestamp
from maxloyalty.runtime import runtime_of

router = APIRouter(
    prefix="/api/pos/integrations",
    tags=["pos"],
    responses=problem_responses(401, 403, 404, 422),
)
Logged = TypeVar("Logged", PosTransaction, PosEvent, PosSync)
Out = TypeVar("Out", bound=BaseModel)


class LevelMapping(BaseModel):
    """R-Keeper's own bonus and discount type numbers for one of our levels."""

    model_config = ConfigDict(extra="forbid")

    bonus: int = Field(default=0, ge=0, le=2**31 - 1)
    discount: int = Field(default=0, ge=0, le=2**31 - 1)


class IntegrationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    levels: dict[str, LevelMapping] | None = Field(
        default=None, max_length=50, description="R-Keeper: level name → bonus/discount numbers"
    )
    terminal_group_id: uuid.UUID | None = Field(
        default=None, description="iiko: only this terminal group's orders count here"
    )


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_login: str = Field(min_length=1, max_length=200, description="iikoCloud apiLogin")
    base_url: str | None = Field(
        default=None, max_length=200, description="iikoCloud address; default: production"
    )


class IntegrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    restaurant_id: uuid.UUID
    system: PosSystem
    name: str = Field(min_length=1, max_length=120)
    credentials: Credentials | None = None
    external_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="iiko organization id, or the R-Keeper restaurant code",
    )
    settings: IntegrationSettings = IntegrationSettings()
    hold_ttl_seconds: int = Field(default=900, ge=30, le=86400)
    require_signature: bool = Field(default=False, description="Tills must sign requests")


class IntegrationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_nulls(self) -> IntegrationPatch:
        cleared = {"name", "is_active", "settings", "hold_ttl_seconds"} & {
            name for name in self.model_fields_set if getattr(self, name) is None
        }
        if cleared:
            raise ValueError(f"{', '.join(sorted(cleared))} cannot be null")
        return self

    name: str | None = Field(default=None, min_length=1, max_length=120)
    is_active: bool | None = None
    credentials: Credentials | None = None
    external_id: str | None = Field(default=None, min_length=1, max_length=128)
    settings: IntegrationSettings | None = None
    hold_ttl_seconds: int | None = Field(default=None, ge=30, le=86400)


class IntegrationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    restaurant_id: uuid.UUID
    system: PosSystem
    name: str
    api_key_id: uuid.UUID
    has_credentials: bool
    external_id: str | None
    settings: dict[str, Any]
    hold_ttl_seconds: int
    is_active: bool
    last_sync_at: Timestamp | None
    created_at: Timestamp

    @classmethod
    def of(cls, row: PosIntegration) -> IntegrationOut:
        fields = {name: getattr(row, name) for name in cls.model_fields if hasattr(row, name)}
        return cls.model_validate(fields | {"has_credentials": row.credentials is not None})


class IntegrationSecrets(IntegrationOut):
    api_key: str = Field(description="mlk_…: shown once; the till authenticates with it")
    signing_secret: str | None = Field(description="Shown once, when requests are signed")
    webhook_token: str | None = Field(description="iiko: miw_…, shown once")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require_signature: bool | None = Field(default=None, description="Default: as the current key")


class PosTransactionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    card_id: uuid.UUID | None
    ledger_operation_id: uuid.UUID | None
    operation: str
    order_id: str
    check_amount: int
    items: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    points_accrued: int
    points_redeemed: int
    discount_applied: int
    status: str
    error: str | None
    created_at: Timestamp


class PosEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_type: str
    external_id: str | None
    payload: dict[str, Any]
    status: str
    detail: str | None
    received_at: Timestamp
    processed_at: Timestamp | None


class PosSyncOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    direction: str
    operation: str
    status: str
    attempt: int
    error: str | None
    result: dict[str, Any]
    next_retry_at: Timestamp | None
    created_at: Timestamp
    finished_at: Timestamp | None


def _secrets(issued: service.IssuedIntegration) -> IntegrationSecrets:
    return IntegrationSecrets(
        **IntegrationOut.of(issued.integration).model_dump(),
        api_key=issued.key.key,
        signing_secret=issued.key.signing_secret,
        webhook_token=issued.webhook_token,
    )


@router.post("", status_code=201)
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
    query = select(PosIntegration)
    if reader.restaurant_scope is not None:  # a manager sees their restaurants' tills
        query = query.where(PosIntegration.restaurant_id.in_(reader.restaurant_scope))
    if restaurant_id is not None:
        query = query.where(PosIntegration.restaurant_id == restaurant_id)
    found = list(await session.scalars(paginate(query, PosIntegration.id, paging)))
    rows, cursor = make_page(found, paging)
    return Page(items=[IntegrationOut.of(r) for r in rows], next_cursor=cursor)


@router.get("/{integration_id}")
async def get_integration(
    integration_id: uuid.UUID, reader: Manager, session: TenantSession
) -> IntegrationOut:
    return IntegrationOut.of(await service.get(session, integration_id, reader))


@router.patch("/{integration_id}")
async def update_integration(
    integration_id: uuid.UUID,
    body: IntegrationPatch,
    _admin: TenantAdmin,
    session: TenantSession,
) -> IntegrationOut:
    """Switched off, the integration's key stops working everywhere within a second."""
    row = await service.get(session, integration_id)
    changes = body.model_dump(mode="json", exclude_unset=True, exclude={"credentials"})
    if "settings" in changes:  # merged as a JSON merge patch: null removes a setting
        merged = row.settings | changes["settings"]
        changes["settings"] = {name: value for name, value in merged.items() if value is not None}
    for name, value in changes.items():
        setattr(row, name, value)
    if body.credentials is not None:
        row.credentials = body.credentials.model_dump_json(exclude_none=True)
    await service.pause_key(session, row)
    await session.flush()
    await record(
        session,
        "pos.integration_updated",
        "pos_integration",
        row.id,
        after=changes | {"credentials_changed": body.credentials is not None},
    )
    return IntegrationOut.of(row)


@router.post("/{integration_id}/rotate-secrets")
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


def _log(
    model: type[Logged], integration_id: uuid.UUID, paging: PageParams, **filters: Any
) -> Select[Any]:
    """One page of an integration's log, newest first, with the filters that were given."""
    query = select(model).where(model.integration_id == integration_id)
    for name, value in filters.items():
        if value is not None:
            query = query.where(getattr(model, name) == value)
    return paginate_newest(query, model.id, paging)


async def _page(
    session: AsyncSession, query: Select[Any], paging: PageParams, out: type[Out]
) -> Page[Out]:
    rows, cursor = make_page(list(await session.scalars(query)), paging)
    return Page(items=[out.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/{integration_id}/transactions")
async def list_transactions(
    integration_id: uuid.UUID,
    reader: Manager,
    session: TenantSession,
    paging: Paging,
    status: PosTransactionStatus | None = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[PosTransactionOut]:
    """The checks the till posted (and those refused), newest first."""
    await service.get(session, integration_id, reader)
    query = _log(PosTransaction, integration_id, paging, status=status, order_id=order_id)
    return await _page(session, query, paging, PosTransactionOut)


@router.get("/{integration_id}/events")
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
    await service.get(session, integration_id, reader)
    query = _log(PosEvent, integration_id, paging, status=status, event_type=event_type)
    return await _page(session, query, paging, PosEventOut)


@router.get("/{integration_id}/syncs")
async def list_syncs(
    integration_id: uuid.UUID,
    reader: Manager,
    session: TenantSession,
    paging: Paging,
    status: SyncStatus | None = None,
) -> Page[PosSyncOut]:
    """Our calls to the vendor's cloud, newest first."""
    await service.get(session, integration_id, reader)
    return await _page(
        session, _log(PosSync, integration_id, paging, status=status), paging, PosSyncOut
    )
