"""The generic POS API, called by tills with their integration's API key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.schemas import IdentifyRequest
from maxloyalty.identity.auth import TillKey
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.identity.principal import Principal
from maxloyalty.integrations.pos import generic, service
from maxloyalty.integrations.pos.generic import (
    ORDER_ID_PATTERN,
    CalculateRequest,
    CommitRequest,
    HoldRequest,
    RefundRequest,
)
from maxloyalty.integrations.pos.models import PosIntegration
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import problem_responses
from maxloyalty.ledger.idempotency import require_key
from maxloyalty.ledger.identify import identify
from maxloyalty.ledger.operations import Context
from maxloyalty.ledger.schemas import IdempotencyKey, IdentifiedCard
from maxloyalty.runtime import runtime_of

router = APIRouter(
    prefix="/api/pos/v1",
    tags=["pos"],
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=ORDER_ID_PATTERN)]


class PosIdentifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    qr: str | None = Field(default=None, max_length=200)
    code: str | None = Field(default=None, pattern=r"^\d{6}$")
    phone: str | None = Field(default=None, max_length=32)
    card_number: str | None = Field(default=None, pattern=r"^\d{1,6}$")
    check_amount: int | None = Field(default=None, gt=0, le=10**10, description="Kopecks")

    @model_validator(mode="after")
    def _one_identifier(self) -> PosIdentifyRequest:
        given = [x for x in (self.qr, self.code, self.phone, self.card_number) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of qr, code, phone, card_number")
        return self


Posting = Callable[[Context, PosIntegration, str, Any, str], Awaitable[tuple[int, dict[str, Any]]]]


async def _posting(
    run: Posting,
    order_id: str,
    body: BaseModel,
    principal: Principal,
    session: AsyncSession,
    idempotency_key: str | None,
) -> JSONResponse:
    """An order operation that writes: keyed, in the integration's restaurant, committed."""
    key = require_key(idempotency_key)
    integration, ctx = await service.till_context(session, principal, utcnow())
    status, answer = await run(ctx, integration, order_id, body, key)
    return JSONResponse(answer, status_code=status)


@router.post("/identify", responses=problem_responses(429))
async def pos_identify(
    body: PosIdentifyRequest, principal: TillKey, session: TenantSession, request: Request
) -> IdentifiedCard:
    """The guest by QR payload, 6-digit code, phone or card number (the card number a till
    reads is the card's 6-digit code): level, balance, points free to spend, discount and
    this check's limit."""
    integration = await service.of_caller(session, principal)
    runtime = runtime_of(request)
    till = service.principal_of(integration)
    lookup = IdentifyRequest(
        restaurant_id=integration.restaurant_id,
        qr=body.qr,
        code=body.code or (body.card_number.zfill(6) if body.card_number else None),
        phone=body.phone,
        check_amount=body.check_amount,
    )
    return await identify(session, till, runtime.limiter, runtime.settings, runtime.qr, lookup)


@router.post("/calculate")
async def pos_calculate(
    body: CalculateRequest, principal: TillKey, session: TenantSession
) -> dict[str, Any]:
    """Discount, points the check may take, points it would earn; nothing is written."""
    integration, ctx = await service.till_context(session, principal, utcnow())
    return await generic.quote(ctx, integration, body)


@router.post("/orders/{order_id}/hold", status_code=201)
async def pos_hold(
    order_id: OrderId,
    body: HoldRequest,
    principal: TillKey,
    session: TenantSession,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Reserve points for the order until `expires_at`; a new hold replaces the order's
    previous one."""
    return await _posting(generic.hold, order_id, body, principal, session, idempotency_key)


@router.post("/orders/{order_id}/cancel")
async def pos_cancel(
    order_id: OrderId, principal: TillKey, session: TenantSession
) -> dict[str, Any]:
    """Release the order's hold (the guest paid otherwise, or the order was voided)."""
    integration = await service.of_caller(session, principal)
    return await generic.cancel(session, integration, order_id, utcnow())


@router.post("/orders/{order_id}/commit", status_code=201)
async def pos_commit(
    order_id: OrderId,
    body: CommitRequest,
    principal: TillKey,
    session: TenantSession,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Post the closed check: spend the held points, accrue on what was paid with money."""
    return await _posting(generic.commit, order_id, body, principal, session, idempotency_key)


@router.post("/orders/{order_id}/refund", status_code=201)
async def pos_refund(
    order_id: OrderId,
    body: RefundRequest,
    principal: TillKey,
    session: TenantSession,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Refund the order's check, whole or `amount` kopecks of it."""
    return await _posting(generic.refund, order_id, body, principal, session, idempotency_key)
