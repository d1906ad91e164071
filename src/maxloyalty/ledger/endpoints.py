"""The seed's cashier routes: identify a card, post an operation on it, read balance and
history, approve manual operations."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime

from maxloyalty.guests.errors import (
    CardBlocked,
    CardNotFound,
    GuestNotFound,
    RestaurantRequired,
    RotatingCodeRequired,
)
from maxloyalty.guests.schemas import IdentifyRequest
from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, CardOperator, Manager, TenantMember
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import InvalidQr, QrExpired, TooManyRequests, problem_responses
from maxloyalty.kit.pagination import Page, Paging, make_page
from maxloyalty.ledger.errors import (
    CheckAlreadyPosted,
    CheckNotFound,
    GuestTransfersDisabled,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    InsufficientPoints,
    NotPending,
    OperationInFlight,
    PointsNotUsed,
    RedemptionLimitExceeded,
    RefundExceedsCheck,
    SameCard,
    TransactionNotFound,
)
from maxloyalty.ledger.models import TxChannel, TxStatus, TxType
from maxloyalty.ledger.schemas import (
    BalanceOut,
    CashierRequest,
    DecisionOut,
    IdempotencyKey,
    IdentifiedCard,
    LedgerRowOut,
    OperationOut,
    TransactionOut,
    TransferOut,
    TransferRequest,
)
from maxloyalty.ledger.service import operations, queries, transfers
from maxloyalty.ledger.service.idempotency import require_key, status_of
from maxloyalty.ledger.service.identify import identify
from maxloyalty.loyalty.errors import ProgramNotFound
from maxloyalty.network.errors import RestaurantForbidden, RestaurantNotFound
from maxloyalty.runtime import runtime_of

router = APIRouter(tags=["ledger"], responses=problem_responses(*SIGNED_IN_REFUSALS))

# Where an operation happens: a restaurant the caller may act in, under a programme.
_PLACE = (RestaurantNotFound, RestaurantForbidden, ProgramNotFound)
# What every idempotent posting may answer besides its own refusals.
_POSTING = (
    *_PLACE,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    OperationInFlight,
    CardNotFound,
    CardBlocked,
)


# What identification may answer besides its place's refusals.
IDENTIFY_REFUSALS = (TooManyRequests, CardNotFound, InvalidQr, QrExpired, RotatingCodeRequired)


@router.post("/api/cards/identify", responses=problem_responses(*IDENTIFY_REFUSALS, *_PLACE))
async def identify_card(
    body: IdentifyRequest, principal: CardOperator, session: TenantSession, request: Request
) -> IdentifiedCard:
    """Find the card by QR payload (the card's `ML1` or the guest app's rotating `ML2`),
    6-digit code (the card's, or the guest app's code of this minute) or phone: guest,
    level, balance, discount and how many points this check may use."""
    runtime = runtime_of(request)
    return await identify(session, principal, runtime.limiter, runtime.settings, runtime.qr, body)


@router.post(
    "/api/guest/{guest_id}/transaction",
    status_code=201,
    response_model_exclude_unset=True,
    responses=problem_responses(
        400,
        409,
        *_POSTING,
        CheckAlreadyPosted,
        CheckNotFound,
        InsufficientPoints,
        PointsNotUsed,
        RedemptionLimitExceeded,
        RefundExceedsCheck,
    ),
)
async def post_transaction(
    guest_id: uuid.UUID,
    body: CashierRequest,
    principal: CardOperator,
    session: TenantSession,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OperationOut:
    """SALE, REDEMPTION (points spent on a check), MANUAL (signed points, with approval
    above the threshold) or REFUND (of a check, whole or `amount` kopecks of it). The
    answer's fields of another kind of operation are left out."""
    key = require_key(idempotency_key)
    ctx = await operations.open_context(session, principal, body.restaurant_id, utcnow())
    outcome = await operations.execute(ctx, guest_id, body, key)
    response.status_code = status_of(outcome, 201)
    return outcome.answer


@router.post(
    "/api/guest/{guest_id}/transfer",
    status_code=201,
    responses=problem_responses(
        400, 409, *_POSTING, GuestNotFound, GuestTransfersDisabled, InsufficientPoints, SameCard
    ),
)
async def post_transfer(
    guest_id: uuid.UUID,
    body: TransferRequest,
    principal: TenantMember,
    session: TenantSession,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> TransferOut:
    """Move points from the guest's card here to another card (TRANSFER pair)."""
    key = require_key(idempotency_key)
    transfers.ensure_own_points(principal, guest_id)
    ctx = await operations.open_context(session, principal, body.restaurant_id, utcnow())
    outcome = await transfers.transfer(ctx, guest_id, body.to_card_id, body.points, key)
    response.status_code = status_of(outcome, 201)
    return outcome.answer


@router.get(
    "/api/guest/{guest_id}/balance",
    responses=problem_responses(*_PLACE, GuestNotFound, CardNotFound, RestaurantRequired),
)
async def get_balance(
    guest_id: uuid.UUID,
    principal: TenantMember,
    session: TenantSession,
    restaurant_id: uuid.UUID | None = None,
) -> BalanceOut:
    card = await queries.guest_card(session, principal, guest_id, restaurant_id)
    return await queries.balance(session, card, utcnow())


@router.get(
    "/api/guest/{guest_id}/history",
    responses=problem_responses(*_PLACE, GuestNotFound, CardNotFound, RestaurantRequired),
)
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
    card = await queries.guest_card(session, principal, guest_id, restaurant_id)
    rows, cursor = make_page(
        await queries.history(session, card.id, paging, type, since, until, channel), paging
    )
    return Page(items=[TransactionOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/api/transactions", responses=problem_responses(RestaurantForbidden))
async def list_transactions(
    principal: Manager,
    session: TenantSession,
    paging: Paging,
    status: TxStatus | None = None,
    restaurant_id: uuid.UUID | None = None,
    type: Annotated[list[TxType] | None, Query()] = None,
) -> Page[LedgerRowOut]:
    """The ledger rows of the caller's restaurants, newest first: `status=PENDING` lists the
    manual operations awaiting approval."""
    rows, cursor = make_page(
        await queries.transactions(
            session, principal, paging, status=status, restaurant_id=restaurant_id, types=type
        ),
        paging,
    )
    return Page(
        items=[
            LedgerRowOut(
                **TransactionOut.model_validate(row.tx).model_dump(),
                card_id=row.tx.card_id,
                card_code=row.code,
            )
            for row in rows
        ],
        next_cursor=cursor,
    )


@router.post(
    "/api/transactions/{transaction_id}/approve",
    responses=problem_responses(
        409, TransactionNotFound, NotPending, InsufficientPoints, CardBlocked
    ),
)
async def approve(
    transaction_id: uuid.UUID, principal: Manager, session: TenantSession
) -> DecisionOut:
    return await operations.decide(session, principal, transaction_id, True, utcnow())


@router.post(
    "/api/transactions/{transaction_id}/reject",
    responses=problem_responses(TransactionNotFound, NotPending),
)
async def reject(
    transaction_id: uuid.UUID, principal: Manager, session: TenantSession
) -> DecisionOut:
    return await operations.decide(session, principal, transaction_id, False, utcnow())
