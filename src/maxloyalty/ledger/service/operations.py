"""Cashier operations on a guest's card: sale, redemption on a check, manual credit or
debit (with approval above a threshold), and refunds of a check (`refunds`). `execute`
runs one exactly once and answers it; approvals of manual operations are `decide`."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.guests.models import GuestCard
from maxloyalty.guests.service.cards import ensure_usable, lock_card
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.events import publish
from maxloyalty.ledger.errors import (
    NotPending,
    PointsNotUsed,
    RedemptionLimitExceeded,
    TransactionNotFound,
)
from maxloyalty.ledger.models import LedgerOperation, PointTransaction, TxStatus, TxType
from maxloyalty.ledger.schemas import (
    CashierRequest,
    DecisionOut,
    LevelOut,
    OperationEffect,
    OperationOut,
    Outcome,
    PostedTransaction,
)
from maxloyalty.ledger.service import core, refunds
from maxloyalty.ledger.service.context import Context, channel_for, claim_with_card, open_context
from maxloyalty.ledger.service.idempotency import Replay, check_key, request_hash
from maxloyalty.ledger.service.levels import reevaluate
from maxloyalty.loyalty.models import LoyaltyLevel, LoyaltySystem, ProgramType, TierChangeReason
from maxloyalty.loyalty.service import (
    KOPECKS_PER_POINT,
    accrual_points,
    discount_percent,
    levels_of,
    max_redeemable,
    percent_of,
)
from maxloyalty.network.models import Tenant

# Callers take the operation's context, its request and a check's key from here too.
__all__ = [
    "APPROVERS",
    "CashierRequest",
    "Context",
    "business_key_of",
    "channel_for",
    "check_key",
    "claim_with_card",
    "decide",
    "execute",
    "open_context",
]

APPROVERS = frozenset({Role.MANAGER, Role.RESTAURANT_ADMIN})


def _fingerprinted(request: CashierRequest) -> dict[str, Any]:
    """The request as its fingerprint sees it; `refund_id` only when given, so requests
    stored before it existed still match their retries."""
    return request.model_dump(mode="json", exclude=None if request.refund_id else {"refund_id"})


def business_key_of(request: CashierRequest) -> str | None:
    """What makes an operation the same one whatever Idempotency-Key it comes with: a check
    is posted once; a refund of the rest of a check, or one with the till's return receipt
    id, once too (a till re-sending it with a new key gets the first answer)."""
    if not request.check_number:
        return None
    if request.type in {"SALE", "REDEMPTION"}:
        return check_key(request.restaurant_id, request.check_number)
    if request.type == "REFUND" and (request.refund_id or request.amount is None):
        # JSON, so that no check number or receipt id (both may hold ':') can pass for
        # another pair; the rest of a check is the receipt null.
        parts = [str(request.restaurant_id), request.check_number, request.refund_id]
        return "refund:" + json.dumps(parts, separators=(",", ":"))
    return None


async def execute(
    ctx: Context,
    guest_id: uuid.UUID,
    request: CashierRequest,
    idempotency_key: str,
) -> Outcome[OperationOut]:
    """Run one cashier operation exactly once: its answer, or the first one's replayed."""
    outcome = await claim_with_card(
        ctx,
        guest_id,
        kind=request.type,
        fingerprint=request_hash(str(guest_id), _fingerprinted(request)),
        idempotency_key=idempotency_key,
        business_key=business_key_of(request),
    )
    if isinstance(outcome, Replay):
        return Outcome(OperationOut.model_validate(outcome.response), outcome.status_code)
    claimed, card = outcome
    levels = await levels_of(ctx.session, ctx.system.id)
    level = next((lv for lv in levels if lv.id == card.level_id), None)
    if request.type == "MANUAL":
        effect = await _manual(ctx, claimed, card, request)
    elif request.type == "REFUND":
        effect = await refunds.refund(ctx, claimed, card, request)
    else:
        effect = await _sale(ctx, claimed, card, level, request)
    new_level = None
    if request.type in {"SALE", "REDEMPTION", "REFUND"}:
        reason = TierChangeReason.REFUND if request.type == "REFUND" else TierChangeReason.PURCHASE
        new_level = await reevaluate(
            ctx.session, ctx.system, levels, card, ctx.now, reason, claimed.id
        )
    current = new_level or next((lv for lv in levels if lv.id == card.level_id), None)
    answer = OperationOut(
        **{field: getattr(effect, field) for field in effect.model_fields_set},
        operation_id=claimed.id,
        guest_id=guest_id,
        card_id=card.id,
        type=request.type,
        balance=card.balance,
        pending_balance=card.pending_balance,
        level=LevelOut.of(current),
        level_changed=LevelOut.of(new_level),
    )
    done = Outcome(answer)
    stored = done.dump()
    claimed.card_id, claimed.response = card.id, stored
    card.last_activity_at = ctx.now
    await ctx.session.flush()
    await record(ctx.session, f"ledger.{request.type.lower()}", "guest_card", card.id, after=stored)
    await publish(
        ctx.session,
        ctx.tenant.id,
        "transaction.reversed" if request.type == "REFUND" else "transaction.created",
        stored,
    )
    if new_level is not None:
        await publish(
            ctx.session,
            ctx.tenant.id,
            "card.level_changed",
            {
                "card_id": str(card.id),
                "guest_id": str(guest_id),
                "level": stored["level_changed"],
            },
        )
    return done


async def _sale(
    ctx: Context,
    op: LedgerOperation,
    card: GuestCard,
    level: LoyaltyLevel | None,
    request: CashierRequest,
) -> OperationEffect:
    """A closed check; with `points`, part of it paid with points. Accrual and discount use
    the level the card had before this check (an upgrade applies from the next one)."""
    assert request.amount is not None
    check = request.amount
    rows: list[PointTransaction] = []
    redeemed = discount = 0
    common = {
        "check_number": request.check_number,
        "check_amount": check,
        "level_id": level.id if level else None,
        "percentage": level.percentage if level else None,
    }
    if ctx.system.type is ProgramType.DISCOUNT:
        if request.points:
            raise PointsNotUsed()
        pct = discount_percent(ctx.system, level)
        discount = percent_of(check, pct)
        paid = check - discount
        rows.append(
            await core.record_only(
                ctx.session,
                card,
                ctx.entry(
                    op.id, TxType.ACCRUAL, paid_amount=paid, discount_amount=discount, **common
                ),
                0,
                TxStatus.COMPLETED,
            )
        )
    else:
        redeemed = request.points or 0
        if redeemed:
            free = await core.ensure_available(
                ctx.session, card, redeemed, ctx.now, spending_hold=ctx.spending_hold
            )
            allowed = max_redeemable(ctx.system, free, check)
            if redeemed > allowed:
                raise RedemptionLimitExceeded(f"This check may take at most {allowed} points.")
            rows.append(
                await core.debit(
                    ctx.session,
                    card,
                    ctx.entry(op.id, TxType.REDEMPTION, **common),
                    redeemed,
                    spending_hold=ctx.spending_hold,
                )
            )
        paid = check - redeemed * KOPECKS_PER_POINT
        accrued = accrual_points(paid, level, ctx.system.rounding)
        entry = ctx.entry(op.id, TxType.ACCRUAL, paid_amount=paid, **common)
        if accrued:
            activates = ctx.activation()
            rows.append(
                await core.credit(
                    ctx.session,
                    card,
                    entry,
                    accrued,
                    expires_at=ctx.expiry(activates),
                    activates_at=activates,
                )
            )
        else:  # too small a check to earn a point: still on the record, and refundable
            rows.append(await core.record_only(ctx.session, card, entry, 0, TxStatus.COMPLETED))
    card.lifetime_spent += paid
    card.total_visits += 1
    card.last_visit_at = ctx.now
    accrued_total = sum(t.amount for t in rows if t.type is TxType.ACCRUAL)
    return OperationEffect(
        status="COMPLETED",
        transactions=[PostedTransaction.of(t) for t in rows],
        check_amount=check,
        paid_amount=paid,
        accrued=accrued_total,
        redeemed=redeemed,
        discount=discount,
        unrecovered_points=0,
    )


async def _manual(
    ctx: Context, op: LedgerOperation, card: GuestCard, request: CashierRequest
) -> OperationEffect:
    """A manual credit or debit; above the threshold a cashier's needs approval."""
    assert request.points is not None
    points = request.points
    entry = ctx.entry(
        op.id, TxType.MANUAL, reason=request.reason, check_number=request.check_number
    )
    needs_approval = (
        abs(points) > ctx.system.manual_approval_threshold and ctx.principal.role not in APPROVERS
    )
    if needs_approval:
        tx = await core.record_only(ctx.session, card, entry, points, TxStatus.PENDING)
        status: Literal["COMPLETED", "PENDING_APPROVAL"] = "PENDING_APPROVAL"
    elif points > 0:
        tx = await core.credit(ctx.session, card, entry, points, expires_at=ctx.expiry())
        status = "COMPLETED"
    else:
        tx = await core.debit(ctx.session, card, entry, -points)
        status = "COMPLETED"
    return OperationEffect(
        status=status,
        transactions=[PostedTransaction.of(tx)],
        accrued=max(points, 0) if status == "COMPLETED" else 0,
        redeemed=max(-points, 0) if status == "COMPLETED" else 0,
        discount=0,
        unrecovered_points=0,
    )


async def decide(
    session: AsyncSession,
    principal: Principal,
    tx_id: uuid.UUID,
    approve: bool,
    now: datetime,
) -> DecisionOut:
    """Approve or reject a manual operation awaiting approval."""
    tx = await session.scalar(
        select(PointTransaction).where(
            PointTransaction.id == tx_id, PointTransaction.type == TxType.MANUAL
        )
    )
    if tx is None or (tx.restaurant_id and not principal.can_see_restaurant(tx.restaurant_id)):
        raise TransactionNotFound()
    card = await lock_card(session, tx.card_id)
    if approve:
        ensure_usable(card)
    await core.settle_due(session, card, now)
    await session.refresh(tx, with_for_update=True)
    if tx.status is not TxStatus.PENDING:
        raise NotPending(f"The operation is already {tx.status.value.lower()}.")
    tx.approved_by_user_id, tx.status_changed_at = principal.subject, now
    if approve:
        tx.status = TxStatus.COMPLETED
        if tx.amount > 0:
            tenant = await session.get(Tenant, card.tenant_id)
            system = await session.get(LoyaltySystem, card.loyalty_system_id)
            assert tenant is not None
            assert system is not None
            expires = core.end_of_day(now + timedelta(days=system.expiry_days), tenant.timezone)
            await core.apply_credit(session, card, tx, expires_at=expires)
        else:
            await core.apply_debit(session, card, tx)
    else:
        tx.status = TxStatus.CANCELLED
    await record(
        session,
        "ledger.manual_approved" if approve else "ledger.manual_rejected",
        "point_transaction",
        tx.id,
        after={"amount": tx.amount, "status": tx.status.value},
    )
    return DecisionOut(
        **PostedTransaction.of(tx).model_dump(), card_id=card.id, balance=card.balance
    )
