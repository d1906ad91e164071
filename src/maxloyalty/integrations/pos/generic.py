"""The generic POS API: what an iikoFront plugin, a custom till or the cashier page does
with an order — identify the guest, calculate the check, hold points at the pre-check,
then commit the closed check or cancel; refund it later.

The till's order id is the check number in the ledger, so an order is posted once
(`operations.check_key`), whatever Idempotency-Key it comes with; a till that
re-sends after a timeout gets the first answer.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.models import GuestCard
from maxloyalty.guests.service import card_for_guest, ensure_usable, lock_card
from maxloyalty.integrations.pos import service
from maxloyalty.integrations.pos.checks import CheckLine, Payment, Quote, calculate
from maxloyalty.integrations.pos.models import PosIntegration
from maxloyalty.kit.errors import AppError, Conflict, NotFound
from maxloyalty.kit.timestamps import rfc3339
from maxloyalty.ledger import core, holds
from maxloyalty.ledger.idempotency import Replay, claim, request_hash
from maxloyalty.ledger.models import HoldStatus, LedgerOperation, PointHold
from maxloyalty.ledger.operations import CashierRequest, Context, check_key, execute
from maxloyalty.loyalty.service import levels_of

ORDER_ID_PATTERN = r"^[\w.:/-]+$"
# A till's own reference (an order, a return receipt): what may follow in a path or a key.
TillRef = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ORDER_ID_PATTERN)]


class CalculateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_id: uuid.UUID
    lines: list[CheckLine] = Field(min_length=1, max_length=500)
    points: int | None = Field(default=None, ge=0, le=10**7, description="Points to spend")
    order_id: TillRef | None = Field(
        default=None, description="The order, when it holds points: they count as free for it"
    )


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_id: uuid.UUID
    points: int = Field(gt=0, le=10**7)
    check_amount: int = Field(gt=0, le=10**10, description="Kopecks")
    ttl_seconds: int | None = Field(
        default=None, ge=1, le=86400, description="Default: the integration's"
    )


class CommitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_id: uuid.UUID | None = Field(default=None, description="Default: the held card")
    amount: int = Field(gt=0, le=10**10, description="The closed check, kopecks")
    points: int | None = Field(
        default=None, ge=0, le=10**7, description="Points spent; default: the held points"
    )
    lines: list[CheckLine] = Field(default=[], max_length=500)
    payments: list[Payment] = Field(default=[], max_length=50)


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int | None = Field(default=None, gt=0, le=10**10, description="Default: the rest")
    refund_id: TillRef | None = Field(
        default=None,
        description="The till's return receipt: a partial refund is posted once per id",
    )


def hold_out(hold: PointHold, now: datetime) -> dict[str, Any]:
    status = (
        HoldStatus.EXPIRED
        if hold.status is HoldStatus.ACTIVE and not holds.is_live(hold, now)
        else hold.status
    )
    return {
        "hold_id": str(hold.id),
        "order_id": hold.order_id,
        "card_id": str(hold.card_id),
        "points": hold.points,
        "status": status.value,
        "expires_at": rfc3339(hold.expires_at),
    }


async def _card(session: AsyncSession, card_id: uuid.UUID) -> GuestCard:
    card = await session.get(GuestCard, card_id)
    if card is None:
        raise NotFound("No such card.", code="card_not_found")
    return card


async def quote(
    ctx: Context, integration: PosIntegration, body: CalculateRequest
) -> dict[str, Any]:
    card = await _program_card(ctx, body.card_id)
    ensure_usable(card)
    levels = await levels_of(ctx.session, ctx.system.id)
    level = next((lv for lv in levels if lv.id == card.level_id), None)
    own = (
        await holds.latest_hold(ctx.session, integration.id, body.order_id)
        if body.order_id
        else None
    )
    # The order's own hold is what it may spend, not something taken from it.
    free = await core.available(
        ctx.session, card, ctx.now, except_hold=own.id if own is not None else None
    )
    return await calculate(
        ctx.session, Quote(ctx.system, card, level, body.lines, free), body.points
    )


async def _program_card(ctx: Context, card_id: uuid.UUID) -> GuestCard:
    found = await _card(ctx.session, card_id)
    # The programme decides which card a guest uses here (one per network or per restaurant).
    card = await card_for_guest(ctx.session, ctx.system, found.user_id, ctx.restaurant.id)
    if card.id != card_id:
        raise NotFound("This card is not used in this restaurant.", code="card_not_found")
    return card


async def _locked_card(ctx: Context, card_id: uuid.UUID) -> GuestCard:
    card = await _program_card(ctx, card_id)
    locked = await lock_card(ctx.session, card.id)
    ensure_usable(locked)
    await core.settle_due(ctx.session, locked, ctx.now)
    return locked


async def hold(
    ctx: Context,
    integration: PosIntegration,
    order_id: str,
    body: HoldRequest,
    idempotency_key: str,
) -> tuple[int, dict[str, Any]]:
    await holds.lock_order(ctx.session, integration.id, order_id)
    claimed = await claim(
        ctx.session,
        integration.tenant_id,
        kind="HOLD",
        fingerprint=request_hash(order_id, body.model_dump(mode="json")),
        idempotency_key=idempotency_key,
        created_by=ctx.principal.subject,
    )
    if isinstance(claimed, Replay):
        return claimed.status_code, claimed.response
    card = await _locked_card(ctx, body.card_id)
    if await _posted(ctx, integration, order_id) is not None:
        raise Conflict(
            "This order's check is already posted; order ids must not repeat.",
            code="order_already_posted",
        )
    placed = await holds.place(
        ctx.session,
        ctx.system,
        card,
        integration_id=integration.id,
        order_id=order_id,
        points=body.points,
        check_amount=body.check_amount,
        ttl=timedelta(seconds=body.ttl_seconds or integration.hold_ttl_seconds),
        now=ctx.now,
    )
    answer = hold_out(placed, ctx.now) | {
        "balance": card.balance,
        "available": await core.available(ctx.session, card, ctx.now),
    }
    claimed.card_id, claimed.response, claimed.status_code = card.id, answer, 201
    await ctx.session.flush()
    return 201, answer


async def cancel(
    session: AsyncSession, integration: PosIntegration, order_id: str, now: datetime
) -> dict[str, Any]:
    await holds.lock_order(session, integration.id, order_id)
    return hold_out(await holds.cancel(session, integration.id, order_id, now), now)


async def commit(
    ctx: Context,
    integration: PosIntegration,
    order_id: str,
    body: CommitRequest,
    idempotency_key: str,
) -> tuple[int, dict[str, Any]]:
    """Post the closed check; the points spent default to what the order held on that card.
    A hold that ran out is no longer a reservation, but its points are still spent if they
    are free."""
    # No hold of this order can be placed, cancelled or committed while this one runs.
    await holds.lock_order(ctx.session, integration.id, order_id)
    held = await holds.latest_hold(ctx.session, integration.id, order_id)
    if held is not None and held.status is HoldStatus.CANCELLED:
        held = None
    card_id = body.card_id or (held.card_id if held else None)
    if card_id is None:
        raise AppError(
            "Name the card: this order holds no points.", code="card_required", status=422
        )
    # Points held on another card are not this card's to spend.
    own = held if held is not None and held.card_id == card_id else None
    points = body.points if body.points is not None else (own.points if own else 0)
    live = own is not None and holds.is_live(own, ctx.now)
    if own is not None and live:
        ctx.spending_hold = own.id
    card = await _program_card(ctx, card_id)
    request = CashierRequest(
        type="REDEMPTION" if points else "SALE",
        restaurant_id=integration.restaurant_id,
        amount=body.amount,
        points=points or None,
        check_number=order_id,
    )
    outcome = await execute(ctx, card.user_id, request, idempotency_key)
    status, answer = outcome.stored_status or 201, outcome.dump()
    if held is not None and not outcome.replayed:
        # Whatever the till held for the order ends with its check: spent, or released.
        await ctx.session.refresh(held, with_for_update=True)
        if held.status is HoldStatus.ACTIVE:  # not cancelled meanwhile
            holds.settle(held, ctx.now, spent=live and points > 0)
    await service.record_check(
        ctx.session,
        integration,
        answer,
        order_id=order_id,
        check_amount=body.amount,
        items=[line.model_dump(mode="json") for line in body.lines],
        payments=[p.model_dump(mode="json") for p in body.payments],
    )
    return status, answer


async def _posted(
    ctx: Context, integration: PosIntegration, order_id: str
) -> LedgerOperation | None:
    """The ledger operation of the order's check, if it was posted (by anyone)."""
    return await ctx.session.scalar(
        select(LedgerOperation).where(
            LedgerOperation.business_key == check_key(integration.restaurant_id, order_id)
        )
    )


async def refund(
    ctx: Context,
    integration: PosIntegration,
    order_id: str,
    body: RefundRequest,
    idempotency_key: str,
) -> tuple[int, dict[str, Any]]:
    posted = await _posted(ctx, integration, order_id)
    if posted is None or posted.created_by != ctx.principal.subject or posted.card_id is None:
        raise NotFound("This till posted no such check.", code="check_not_found")
    card = await _card(ctx.session, posted.card_id)
    request = CashierRequest(
        type="REFUND",
        restaurant_id=integration.restaurant_id,
        amount=body.amount,
        check_number=order_id,
        refund_id=body.refund_id,
    )
    outcome = await execute(ctx, card.user_id, request, idempotency_key)
    status, answer = outcome.stored_status or 201, outcome.dump()
    await service.record_check(
        ctx.session,
        integration,
        answer,
        order_id=order_id,
        check_amount=answer.get("refunded_amount", 0),
    )
    return status, answer
