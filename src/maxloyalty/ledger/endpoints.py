"""The seed's cashier routes: identify a card, post an operation on it, read balance and
history, approve manual operations."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.models import CardStatus, GuestCard
from maxloyalty.guests.schemas import IdentifyRequest
from maxloyalty.guests.service import card_for_guest, ensure_restaurant
from maxloyalty.identity.auth import CardOperator, Manager, TenantMember
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import AppError, NotFound, problem_responses
from maxloyalty.kit.pagination import Page, Paging, make_page
from maxloyalty.ledger import operations, queries, transfers
from maxloyalty.ledger.idempotency import require_key
from maxloyalty.ledger.identify import identify
from maxloyalty.ledger.models import TxChannel, TxType
from maxloyalty.ledger.operations import CashierRequest
from maxloyalty.ledger.schemas import IdempotencyKey, TransactionOut, TransferRequest
from maxloyalty.loyalty.service import program_for
from maxloyalty.runtime import runtime_of

router = APIRouter(tags=["ledger"], responses=problem_responses(401, 403, 404, 422))


@router.post("/api/cards/identify", responses=problem_responses(429))
async def identify_card(
    body: IdentifyRequest, principal: CardOperator, session: TenantSession, request: Request
) -> dict[str, Any]:
    """Find the card by QR payload, 6-digit code or phone: guest, level, balance, discount
    and how many points this check may use."""
    runtime = runtime_of(request)
    return await identify(session, principal, runtime.limiter, runtime.settings, runtime.qr, body)


@router.post(
    "/api/guest/{guest_id}/transaction",
    status_code=201,
    responses=problem_responses(400, 409),
)
async def post_transaction(
    guest_id: uuid.UUID,
    body: CashierRequest,
    principal: CardOperator,
    session: TenantSession,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """SALE, REDEMPTION (points spent on a check), MANUAL (signed points, with approval
    above the threshold) or REFUND (of a check, whole or `amount` kopecks of it)."""
    key = require_key(idempotency_key)
    ctx = await operations.open_context(session, principal, body.restaurant_id, utcnow())
    status, answer = await operations.execute(ctx, guest_id, body, key)
    return JSONResponse(answer, status_code=status)


async def _card(
    session: AsyncSession,
    principal: Principal,
    guest_id: uuid.UUID,
    restaurant_id: uuid.UUID | None,
) -> GuestCard:
    if principal.role is Role.GUEST and principal.subject != guest_id:
        raise NotFound("No such guest.", code="guest_not_found")
    if restaurant_id is not None:
        ensure_restaurant(principal, restaurant_id)
        system = await program_for(session, restaurant_id)
        return await card_for_guest(session, system, guest_id, restaurant_id)
    cards = list(
        await session.scalars(
            select(GuestCard).where(
                GuestCard.user_id == guest_id, GuestCard.status != CardStatus.DELETED
            )
        )
    )
    visible = [
        c for c in cards if c.restaurant_id is None or principal.can_see_restaurant(c.restaurant_id)
    ]
    if not visible:
        raise NotFound("This guest has no card here.", code="card_not_found")
    if len(visible) > 1:
        raise AppError(
            "The guest has a card per restaurant: pass restaurant_id.",
            code="restaurant_required",
            status=422,
        )
    return visible[0]


@router.post(
    "/api/guest/{guest_id}/transfer", status_code=201, responses=problem_responses(400, 409)
)
async def post_transfer(
    guest_id: uuid.UUID,
    body: TransferRequest,
    principal: TenantMember,
    session: TenantSession,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Move points from the guest's card here to another card (TRANSFER pair)."""
    key = require_key(idempotency_key)
    if principal.role is Role.GUEST and principal.subject != guest_id:
        raise NotFound("No such guest.", code="guest_not_found")
    ctx = await operations.open_context(session, principal, body.restaurant_id, utcnow())
    status, answer = await transfers.transfer(ctx, guest_id, body.to_card_id, body.points, key)
    return JSONResponse(answer, status_code=status)


@router.get("/api/guest/{guest_id}/balance")
async def get_balance(
    guest_id: uuid.UUID,
    principal: TenantMember,
    session: TenantSession,
    restaurant_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    card = await _card(session, principal, guest_id, restaurant_id)
    return await queries.balance(session, card, utcnow())


@router.get("/api/guest/{guest_id}/history")
async def get_history(
    guest_id: uuid.UUID,
    principal: TenantMember,
    session: TenantSession,
    paging: Paging,
    restaurant_id: uuid.UUID | None = None,
    type: Annotated[list[TxType] | None, Query()] = None,
    since: AwareDatetime | None = Query(default=None, alias="from"),
    until: AwareDatetime | None = Query(default=None, alias="to"),
    channel: Annotated[
        list[TxChannel] | None,
        Query(description="Who posted the rows; repeat it for several (`?channel=A&channel=B`)"),
    ] = None,
) -> Page[TransactionOut]:
    card = await _card(session, principal, guest_id, restaurant_id)
    rows, cursor = make_page(
        await queries.history(session, card.id, paging, type, since, until, channel), paging
    )
    return Page(items=[TransactionOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post("/api/transactions/{transaction_id}/approve", responses=problem_responses(409))
async def approve(
    transaction_id: uuid.UUID, principal: Manager, session: TenantSession
) -> dict[str, Any]:
    return await operations.decide(session, principal, transaction_id, True, utcnow())


@router.post("/api/transactions/{transaction_id}/reject", responses=problem_responses(409))
async def reject(
    transaction_id: uuid.UUID, principal: Manager, session: TenantSession
) -> dict[str, Any]:
    return await operations.decide(session, principal, transaction_id, False, utcnow())
