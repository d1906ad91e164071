"""Orders on the generic POS API: what an iikoFront plugin, a custom till or the cashier page does
with an order — identify the guest, calculate the check, hold points at the pre-check,
then commit the closed check or cancel; refund it later.

The till's order id is the check number in the ledger, so an order is posted once
(`operations.check_key`), whatever Idempotency-Key it comes with; a till that
re-sends after a timeout gets the first answer.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.config import Settings
from maxloyalty.guests.errors import CardNotFound
from maxloyalty.guests.models import GuestCard
from maxloyalty.guests.schemas import IdentifyRequest
from maxloyalty.guests.service.cards import card_for_guest, ensure_usable, lock_card
from maxloyalty.identity.principal import Principal
from maxloyalty.integrations.pos import service
from maxloyalty.integrations.pos.checks import Quote, calculate
from maxloyalty.integrations.pos.errors import CardRequired, OrderAlreadyPosted
from maxloyalty.integrations.pos.models import PosIntegration
from maxloyalty.integrations.pos.schemas import (
    CalculateRequest,
    CommitRequest,
    HeldOut,
    HoldOut,
    HoldRequest,
    PosIdentifyRequest,
    QuoteOut,
    RefundRequest,
)
from maxloyalty.kit.ratelimit import RateLimiter
from maxloyalty.kit.signing import QrSigner
from maxloyalty.ledger.errors import CheckNotFound
from maxloyalty.ledger.models import HoldStatus, LedgerOperation, PointHold
from maxloyalty.ledger.schemas import IdentifiedCard, OperationOut, Outcome
from maxloyalty.ledger.service import core, holds
from maxloyalty.ledger.service.idempotency import Replay, claim, request_hash
from maxloyalty.ledger.service.identify import identify as identify_guest
from maxloyalty.ledger.service.operations import CashierRequest, Context, check_key, execute
from maxloyalty.loyalty.service import levels_of


def hold_out(hold: PointHold, now: datetime) -> HoldOut:
    status = (
        HoldStatus.EXPIRED
        if hold.status is HoldStatus.ACTIVE and not holds.is_live(hold, now)
        else hold.status
    )
    return HoldOut(
        hold_id=hold.id,
        order_id=hold.order_id,
        card_id=hold.card_id,
        points=hold.points,
        status=status.value,
        expires_at=hold.expires_at,
    )


async def _card(session: AsyncSession, card_id: uuid.UUID) -> GuestCard:
    card = await session.get(GuestCard, card_id)
    if card is None:
        raise CardNotFound()
    return card


async def identify(
    session: AsyncSession,
    principal: Principal,
    limiter: RateLimiter,
    settings: Settings,
    qr: QrSigner,
    body: PosIdentifyRequest,
) -> IdentifiedCard:
    """The guest by QR payload, 6-digit code, phone or card number (the card number a till
    reads is the card's 6-digit code), as the ledger identifies them at the integration's
    restaurant."""
    integration = await service.of_caller(session, principal)
    lookup = IdentifyRequest(
        restaurant_id=integration.restaurant_id,
        qr=body.qr,
        code=body.code or (body.card_number.zfill(6) if body.card_number else None),
        phone=body.phone,
        check_amount=body.check_amount,
    )
    till = service.principal_of(integration)
    return await identify_guest(session, till, limiter, settings, qr, lookup)


async def quote_for(
    session: AsyncSession, principal: Principal, body: CalculateRequest, now: datetime
) -> QuoteOut:
    """The calling till's quote (`quote`)."""
    integration, ctx = await service.till_context(session, principal, now)
    return await quote(ctx, integration, body)


async def quote(ctx: Context, integration: PosIntegration, body: CalculateRequest) -> QuoteOut:
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
        raise CardNotFound("This card is not used in this restaurant.")
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
) -> HeldOut:
    await holds.lock_order(ctx.session, integration.id, order_id)
    claimed = await claim(
        ctx.session,
        integration.tenant_id,
        kind="HOLD",
        fingerprint=request_hash(order_id, body.model_dump(mode="json")),
        idempotency_key=idempotency_key,
        created_by=ctx.principal.subject,
    )
    if isinstance(claimed, Replay):  # a hold is answered 201, replayed or not
        return HeldOut.model_validate(claimed.response)
    card = await _locked_card(ctx, body.card_id)
    if await _posted(ctx, integration, order_id) is not None:
        raise OrderAlreadyPosted()
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
    answer = HeldOut(
        **hold_out(placed, ctx.now).model_dump(),
        balance=card.balance,
        available=await core.available(ctx.session, card, ctx.now),
    )
    claimed.card_id, claimed.status_code = card.id, 201
    claimed.response = answer.model_dump(mode="json")
    await ctx.session.flush()
    return answer


async def cancel_for(
    session: AsyncSession, principal: Principal, order_id: str, now: datetime
) -> HoldOut:
    """The calling till's `cancel`."""
    return await cancel(session, await service.of_caller(session, principal), order_id, now)


async def cancel(
    session: AsyncSession, integration: PosIntegration, order_id: str, now: datetime
) -> HoldOut:
    await holds.lock_order(session, integration.id, order_id)
    return hold_out(await holds.cancel(session, integration.id, order_id, now), now)


async def commit(
    ctx: Context,
    integration: PosIntegration,
    order_id: str,
    body: CommitRequest,
    idempotency_key: str,
) -> Outcome[OperationOut]:
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
        raise CardRequired()
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
    answer = outcome.dump()
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
    return outcome


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
) -> Outcome[OperationOut]:
    posted = await _posted(ctx, integration, order_id)
    if posted is None or posted.created_by != ctx.principal.subject or posted.card_id is None:
        raise CheckNotFound()
    card = await _card(ctx.session, posted.card_id)
    request = CashierRequest(
        type="REFUND",
        restaurant_id=integration.restaurant_id,
        amount=body.amount,
        check_number=order_id,
        refund_id=body.refund_id,
    )
    outcome = await execute(ctx, card.user_id, request, idempotency_key)
    answer = outcome.dump()
    await service.record_check(
        ctx.session,
        integration,
        answer,
        order_id=order_id,
        check_amount=answer.get("refunded_amount", 0),
    )
    return outcome
