"""The generic POS API, called by tills with their integration's API key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.errors import CardNotFound, RotatingCodeRequired
from maxloyalty.identity.auth import TillKey
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.identity.principal import Principal
from maxloyalty.integrations.pos import orders, service
from maxloyalty.integrations.pos.errors import (
    CardRequired,
    OrderAlreadyPosted,
    PosIntegrationInactive,
    PosIntegrationRequired,
)
from maxloyalty.integrations.pos.models import PosIntegration
from maxloyalty.integrations.pos.schemas import (
    ORDER_ID_PATTERN,
    CalculateRequest,
    CommitRequest,
    HeldOut,
    HoldOut,
    HoldRequest,
    PosIdentifyRequest,
    QuoteOut,
    RefundRequest,
)
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import InvalidQr, QrExpired, TooManyRequests, problem_responses
from maxloyalty.ledger.errors import CheckNotFound
from maxloyalty.ledger.schemas import IdempotencyKey, IdentifiedCard, OperationOut, Outcome
from maxloyalty.ledger.service.idempotency import require_key, status_of
from maxloyalty.ledger.service.operations import Context
from maxloyalty.runtime import runtime_of

router = APIRouter(
    prefix="/api/pos/v1",
    tags=["pos"],
    responses=problem_responses(
        400, 401, 403, 404, 409, 422, PosIntegrationRequired, PosIntegrationInactive
    ),
)
OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=ORDER_ID_PATTERN)]
Posting = Callable[[Context, PosIntegration, str, Any, str], Awaitable[Outcome[OperationOut]]]


async def _posting(
    run: Posting,
    order_id: str,
    body: BaseModel,
    principal: Principal,
    session: AsyncSession,
    response: Response,
    idempotency_key: str | None,
) -> OperationOut:
    """An order operation that writes: keyed, in the integration's restaurant; a replay
    answers the stored status."""
    key = require_key(idempotency_key)
    integration, ctx = await service.till_context(session, principal, utcnow())
    outcome = await run(ctx, integration, order_id, body, key)
    response.status_code = status_of(outcome, 201)
    return outcome.answer


@router.post(
    "/identify",
    responses=problem_responses(
        TooManyRequests, CardNotFound, InvalidQr, QrExpired, RotatingCodeRequired
    ),
)
async def pos_identify(
    body: PosIdentifyRequest, principal: TillKey, session: TenantSession, request: Request
) -> IdentifiedCard:
    """The guest by QR payload, 6-digit code, phone or card number (the card number a till
    reads is the card's 6-digit code, or the guest app's rotating code of this minute):
    level, balance, points free to spend, discount and this check's limit."""
    runtime = runtime_of(request)
    return await orders.identify(
        session, principal, runtime.limiter, runtime.settings, runtime.qr, body
    )


@router.post("/calculate", responses=problem_responses(CardNotFound))
async def pos_calculate(
    body: CalculateRequest, principal: TillKey, session: TenantSession
) -> QuoteOut:
    """Discount, points the check may take, points it would earn; nothing is written."""
    return await orders.quote_for(session, principal, body, utcnow())


@router.post(
    "/orders/{order_id}/hold",
    status_code=201,
    responses=problem_responses(CardNotFound, OrderAlreadyPosted),
)
async def pos_hold(
    order_id: OrderId,
    body: HoldRequest,
    principal: TillKey,
    session: TenantSession,
    idempotency_key: IdempotencyKey = None,
) -> HeldOut:
    """Reserve points for the order until `expires_at`; a new hold replaces the order's
    previous one."""
    key = require_key(idempotency_key)
    integration, ctx = await service.till_context(session, principal, utcnow())
    return await orders.hold(ctx, integration, order_id, body, key)


@router.post("/orders/{order_id}/cancel")
async def pos_cancel(order_id: OrderId, principal: TillKey, session: TenantSession) -> HoldOut:
    """Release the order's hold (the guest paid otherwise, or the order was voided)."""
    return await orders.cancel_for(session, principal, order_id, utcnow())


@router.post(
    "/orders/{order_id}/commit",
    status_code=201,
    response_model_exclude_unset=True,
    responses=problem_responses(CardNotFound, CardRequired),
)
async def pos_commit(
    order_id: OrderId,
    body: CommitRequest,
    principal: TillKey,
    session: TenantSession,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OperationOut:
    """Post the closed check: spend the held points, accrue on what was paid with money."""
    return await _posting(
        orders.commit, order_id, body, principal, session, response, idempotency_key
    )


@router.post(
    "/orders/{order_id}/refund",
    status_code=201,
    response_model_exclude_unset=True,
    responses=problem_responses(CardNotFound, CheckNotFound),
)
async def pos_refund(
    order_id: OrderId,
    body: RefundRequest,
    principal: TillKey,
    session: TenantSession,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OperationOut:
    """Refund the order's check, whole or `amount` kopecks of it."""
    return await _posting(
        orders.refund, order_id, body, principal, session, response, idempotency_key
    )
