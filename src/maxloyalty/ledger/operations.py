"""Cashier operations on a guest's card: sale, redemption on a check, manual credit or
debit (with approval above a threshold), and refunds of a check.

Refund rule (documented in the README): a refund of a share of a check returns that share
of the points redeemed on it (to the lots they came from, keeping their expiry; points whose
lot has expired meanwhile are not returned) and takes back that share of the points accrued
on it — from the accrual's own lot first, then from the rest of the balance, never below
zero. Accrued points the guest has already spent beyond the balance are not recovered; the
answer reports them as `unrecovered_points`. Shares are cumulative, so the last refund of a
check settles rounding exactly.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.guests.models import GuestCard
from maxloyalty.guests.service import card_for_guest, ensure_restaurant, ensure_usable, lock_card
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.errors import AppError, NotFound
from maxloyalty.kit.events import publish
from maxloyalty.kit.timestamps import rfc3339
from maxloyalty.ledger import core
from maxloyalty.ledger.idempotency import Replay, claim, request_hash
from maxloyalty.ledger.levels import reevaluate
from maxloyalty.ledger.models import (
    LedgerOperation,
    PointTransaction,
    TxChannel,
    TxSource,
    TxStatus,
    TxType,
)
from maxloyalty.loyalty.models import LoyaltyLevel, LoyaltySystem, ProgramType, TierChangeReason
from maxloyalty.loyalty.service import (
    KOPECKS_PER_POINT,
    accrual_points,
    discount_percent,
    levels_of,
    max_redeemable,
    percent_of,
    program_for,
)
from maxloyalty.network.models import Restaurant, Tenant

APPROVERS = frozenset({Role.MANAGER, Role.RESTAURANT_ADMIN})


def channel_for(principal: Principal) -> TxChannel:
    """The channel a caller's rows record. A till's integration names its own kind instead
    (`open_context(channel=...)`): its principal is a SYSTEM one like any API key's."""
    if principal.role is Role.GUEST:
        return TxChannel.GUEST_APP
    if principal.role is Role.SYSTEM:
        return TxChannel.POS_API
    return TxChannel.STAFF


class CashierRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["SALE", "REDEMPTION", "MANUAL", "REFUND"]
    restaurant_id: uuid.UUID
    amount: int | None = Field(default=None, gt=0, le=10**10, description="Kopecks")
    points: int | None = Field(default=None, ge=-(10**7), le=10**7)
    check_number: str | None = Field(default=None, min_length=1, max_length=64)
    refund_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="REFUND: the return receipt; a partial refund is posted once per id",
    )
    reason: str | None = Field(default=None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _fields_for_type(self) -> CashierRequest:
        need: dict[str, tuple[str, ...]] = {
            "SALE": ("amount",),
            "REDEMPTION": ("amount", "points"),
            "MANUAL": ("points", "reason"),
            "REFUND": ("check_number",),
        }
        missing = [f for f in need[self.type] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"{self.type} needs {', '.join(missing)}")
        if self.type in {"SALE", "REDEMPTION"} and self.points is not None and self.points <= 0:
            raise ValueError(f"{self.type} takes points > 0 (points spent on the check)")
        if self.type == "REDEMPTION" and not self.points:
            raise ValueError("REDEMPTION needs points > 0")
        if self.type == "REFUND" and self.points is not None:
            raise ValueError("REFUND takes an amount of the check, not points")
        if self.type != "REFUND" and self.refund_id is not None:
            raise ValueError("only a REFUND takes a refund_id")
        if self.type == "MANUAL" and self.points == 0:
            raise ValueError("MANUAL needs points other than 0")
        return self


class Context:
    """What every operation needs to know about where and when it happens."""

    def __init__(
        self,
        session: AsyncSession,
        principal: Principal,
        now: datetime,
        system: LoyaltySystem,
        tenant: Tenant,
        restaurant: Restaurant,
        channel: TxChannel,
    ) -> None:
        self.session, self.principal, self.now = session, principal, now
        self.system, self.tenant, self.restaurant = system, tenant, restaurant
        self.channel = channel
        # The till's hold this operation settles: its points are the ones to spend.
        self.spending_hold: uuid.UUID | None = None
        # Set when `execute` answered with an earlier operation's answer.
        self.replayed = False

    def expiry(self, activates_at: datetime | None = None) -> datetime:
        start = activates_at or self.now
        return core.end_of_day(
            start + timedelta(days=self.system.expiry_days), self.tenant.timezone
        )

    def activation(self) -> datetime | None:
        if not self.system.pending_days:
            return None
        return self.now + timedelta(days=self.system.pending_days)

    def entry(self, operation_id: uuid.UUID, type: TxType, **fields: Any) -> core.Entry:
        source = TxSource.MANUAL if type in {TxType.MANUAL, TxType.ADJUSTMENT} else TxSource.POS
        return core.Entry(
            operation_id=operation_id,
            type=type,
            source=fields.pop("source", source),
            channel=self.channel,
            now=self.now,
            restaurant_id=self.restaurant.id,
            created_by_user_id=self.principal.subject
            if self.principal.role is not Role.SYSTEM
            else None,
            source_id=fields.pop("source_id", str(self.principal.subject)),
            **fields,
        )


def tx_out(tx: PointTransaction) -> dict[str, Any]:
    return {
        "id": str(tx.id),
        "type": tx.type.value,
        "status": tx.status.value,
        "amount": tx.amount,
        "created_at": rfc3339(tx.created_at),
    }


def level_out(level: LoyaltyLevel | None) -> dict[str, Any] | None:
    if level is None:
        return None
    return {"id": str(level.id), "name": level.name, "percentage": str(level.percentage)}


async def open_context(
    session: AsyncSession,
    principal: Principal,
    restaurant_id: uuid.UUID,
    now: datetime,
    channel: TxChannel | None = None,
) -> Context:
    """The context of `principal`'s operations; `channel` by default as `channel_for` says."""
    ensure_restaurant(principal, restaurant_id)
    restaurant = await session.get(Restaurant, restaurant_id)
    if restaurant is None:
        raise NotFound("No such restaurant.", code="restaurant_not_found")
    tenant = await session.get(Tenant, restaurant.tenant_id)
    assert tenant is not None
    system = await program_for(session, restaurant_id)
    return Context(
        session, principal, now, system, tenant, restaurant, channel or channel_for(principal)
    )


async def claim_with_card(
    ctx: Context,
    guest_id: uuid.UUID,
    *,
    kind: str,
    fingerprint: str,
    idempotency_key: str,
    business_key: str | None = None,
) -> tuple[LedgerOperation, GuestCard] | Replay:
    """Claim the operation (or get the answer to replay), then lock the guest's usable card."""
    claimed = await claim(
        ctx.session,
        ctx.tenant.id,
        kind=kind,
        fingerprint=fingerprint,
        idempotency_key=idempotency_key,
        business_key=business_key,
        created_by=ctx.principal.subject,
    )
    if isinstance(claimed, Replay):
        return claimed
    found = await card_for_guest(ctx.session, ctx.system, guest_id, ctx.restaurant.id)
    card = await lock_card(ctx.session, found.id)
    ensure_usable(card)
    await core.settle_due(ctx.session, card, ctx.now)
    return claimed, card


def _fingerprinted(request: CashierRequest) -> dict[str, Any]:
    """The request as its fingerprint sees it; `refund_id` only when given, so requests
    stored before it existed still match their retries."""
    return request.model_dump(mode="json", exclude=None if request.refund_id else {"refund_id"})


def check_key(restaurant_id: uuid.UUID, check_number: str) -> str:
    """The business key of a posted check (sale or redemption)."""
    return f"check:{restaurant_id}:{check_number}"


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
) -> tuple[int, dict[str, Any]]:
    """Run one cashier operation exactly once; returns (HTTP status, answer)."""
    outcome = await claim_with_card(
        ctx,
        guest_id,
        kind=request.type,
        fingerprint=request_hash(str(guest_id), _fingerprinted(request)),
        idempotency_key=idempotency_key,
        business_key=business_key_of(request),
    )
    if isinstance(outcome, Replay):
        ctx.replayed = True
        return outcome.status_code, outcome.response
    claimed, card = outcome
    levels = await levels_of(ctx.session, ctx.system.id)
    level = next((lv for lv in levels if lv.id == card.level_id), None)
    run = {"SALE": _sale, "REDEMPTION": _sale, "MANUAL": _manual, "REFUND": _refund}[request.type]
    answer = await run(ctx, claimed, card, level, request)
    new_level = None
    if request.type in {"SALE", "REDEMPTION", "REFUND"}:
        reason = TierChangeReason.REFUND if request.type == "REFUND" else TierChangeReason.PURCHASE
        new_level = await reevaluate(
            ctx.session, ctx.system, levels, card, ctx.now, reason, claimed.id
        )
    current = new_level or next((lv for lv in levels if lv.id == card.level_id), None)
    answer |= {
        "operation_id": str(claimed.id),
        "guest_id": str(guest_id),
        "card_id": str(card.id),
        "type": request.type,
        "balance": card.balance,
        "pending_balance": card.pending_balance,
        "level": level_out(current),
        "level_changed": level_out(new_level) if new_level else None,
    }
    claimed.card_id, claimed.response, claimed.status_code = card.id, answer, 201
    card.last_activity_at = ctx.now
    await ctx.session.flush()
    await record(ctx.session, f"ledger.{request.type.lower()}", "guest_card", card.id, after=answer)
    await publish(
        ctx.session,
        ctx.tenant.id,
        "transaction.reversed" if request.type == "REFUND" else "transaction.created",
        answer,
    )
    if new_level is not None:
        await publish(
            ctx.session,
            ctx.tenant.id,
            "card.level_changed",
            {"card_id": str(card.id), "guest_id": str(guest_id), "level": level_out(new_level)},
        )
    return 201, answer


async def _sale(
    ctx: Context,
    op: LedgerOperation,
    card: GuestCard,
    level: LoyaltyLevel | None,
    request: CashierRequest,
) -> dict[str, Any]:
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
            raise AppError(
                "This network gives discounts, not points.", code="points_not_used", status=422
            )
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
            await core.ensure_available(
                ctx.session, card, redeemed, ctx.now, spending_hold=ctx.spending_hold
            )
            free = await core.available(ctx.session, card, ctx.now, except_hold=ctx.spending_hold)
            allowed = max_redeemable(ctx.system, free, check)
            if redeemed > allowed:
                raise AppError(
                    f"This check may take at most {allowed} points.",
                    code="redemption_limit_exceeded",
                    status=422,
                )
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
    return {
        "status": "COMPLETED",
        "transactions": [tx_out(t) for t in rows],
        "check_amount": check,
        "paid_amount": paid,
        "accrued": accrued_total,
        "redeemed": redeemed,
        "discount": discount,
        "unrecovered_points": 0,
    }


async def _manual(
    ctx: Context,
    op: LedgerOperation,
    card: GuestCard,
    level: LoyaltyLevel | None,
    request: CashierRequest,
) -> dict[str, Any]:
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
        status = "PENDING_APPROVAL"
    elif points > 0:
        tx = await core.credit(ctx.session, card, entry, points, expires_at=ctx.expiry())
        status = "COMPLETED"
    else:
        tx = await core.debit(ctx.session, card, entry, -points)
        status = "COMPLETED"
    return {
        "status": status,
        "transactions": [tx_out(tx)],
        "accrued": max(points, 0) if status == "COMPLETED" else 0,
        "redeemed": max(-points, 0) if status == "COMPLETED" else 0,
        "discount": 0,
        "unrecovered_points": 0,
    }


async def _refund(
    ctx: Context,
    op: LedgerOperation,
    card: GuestCard,
    level: LoyaltyLevel | None,
    request: CashierRequest,
) -> dict[str, Any]:
    assert request.check_number is not None  # the request's validator requires it
    original_op = await ctx.session.scalar(
        select(LedgerOperation).where(
            LedgerOperation.business_key == check_key(request.restaurant_id, request.check_number)
        )
    )
    if original_op is None or original_op.card_id != card.id:
        raise NotFound("No such check on this card.", code="check_not_found")
    originals = list(
        await ctx.session.scalars(
            select(PointTransaction).where(PointTransaction.operation_id == original_op.id)
        )
    )
    check = next(t.check_amount for t in originals if t.check_amount is not None)
    assert check is not None
    accrual = next((t for t in originals if t.type is TxType.ACCRUAL), None)
    redemption = next((t for t in originals if t.type is TxType.REDEMPTION), None)
    reversals = list(
        await ctx.session.scalars(
            select(PointTransaction).where(
                PointTransaction.reverses_id.in_([t.id for t in originals]),
                PointTransaction.type == TxType.REVERSAL,
            )
        )
    )
    refunded_before = sum({t.operation_id: t.check_amount or 0 for t in reversals}.values())
    refund = request.amount or check - refunded_before
    if refund <= 0 or refunded_before + refund > check:
        raise AppError(
            f"{check - refunded_before} kopecks of this check are left to refund.",
            code="refund_exceeds_check",
            status=422,
        )
    done = refunded_before + refund
    complete = done == check

    def share(total: int) -> int:
        return total if complete else total * done // check

    def already(original: PointTransaction | None) -> int:
        if original is None:
            return 0
        # What was actually taken or returned: a shortfall is owed still, and a later refund
        # of the same check tries to take it again.
        return sum(abs(t.amount) for t in reversals if t.reverses_id == original.id)

    rows: list[PointTransaction] = []
    unrecovered = 0
    paid_total = accrual.paid_amount if accrual and accrual.paid_amount is not None else check
    paid_refund = share(paid_total) - (paid_total * refunded_before // check)
    common = {"check_number": request.check_number, "check_amount": refund}
    take = 0
    if accrual is not None and accrual.amount > 0:
        take = share(accrual.amount) - already(accrual)
    # The refunded spend goes on exactly one row: the accrual's reversal when there is one.
    paid_on_redemption = {"paid_amount": paid_refund} if take <= 0 else {}
    if redemption is not None:
        give = share(-redemption.amount) - already(redemption)
        if give > 0:
            entry = ctx.entry(
                op.id,
                TxType.REVERSAL,
                reverses_id=redemption.id,
                **common,
                **paid_on_redemption,
            )
            tx, lost = await core.give_back(ctx.session, card, entry, redemption, give)
            rows += [tx] if tx else []
            if lost and tx is None:
                rows.append(await core.record_only(ctx.session, card, entry, 0, TxStatus.COMPLETED))
    if accrual is not None and take > 0:
        entry = ctx.entry(
            op.id, TxType.REVERSAL, reverses_id=accrual.id, paid_amount=paid_refund, **common
        )
        tx, unrecovered = await core.take_back(
            ctx.session, card, entry, take, first_lot_of=accrual.id
        )
        if tx is None:
            tx = await core.record_only(
                ctx.session, card, core.unrecovered(entry, unrecovered), 0, TxStatus.COMPLETED
            )
        rows.append(tx)
    if not rows:  # a discount check: nothing to reverse but the record of the refund
        rows.append(
            await core.record_only(
                ctx.session,
                card,
                ctx.entry(
                    op.id,
                    TxType.REVERSAL,
                    reverses_id=originals[0].id,
                    paid_amount=paid_refund,
                    **common,
                ),
                0,
                TxStatus.COMPLETED,
            )
        )
    card.lifetime_spent = max(0, card.lifetime_spent - paid_refund)
    if complete:
        for original in originals:
            if original.status is TxStatus.COMPLETED:
                original.status, original.status_changed_at = TxStatus.REVERSED, ctx.now
    return {
        "status": "COMPLETED",
        "transactions": [tx_out(t) for t in rows],
        "refunded_amount": refund,
        "accrued": 0,
        "redeemed": 0,
        "returned_points": sum(t.amount for t in rows if t.amount > 0),
        "reversed_points": -sum(t.amount for t in rows if t.amount < 0),
        "discount": 0,
        "unrecovered_points": unrecovered,
    }


async def decide(
    session: AsyncSession,
    principal: Principal,
    tx_id: uuid.UUID,
    approve: bool,
    now: datetime,
) -> dict[str, Any]:
    """Approve or reject a manual operation awaiting approval."""
    tx = await session.scalar(
        select(PointTransaction).where(
            PointTransaction.id == tx_id, PointTransaction.type == TxType.MANUAL
        )
    )
    if tx is None or (tx.restaurant_id and not principal.can_see_restaurant(tx.restaurant_id)):
        raise NotFound("No such manual operation.", code="transaction_not_found")
    card = await lock_card(session, tx.card_id)
    if approve:
        ensure_usable(card)
    await core.settle_due(session, card, now)
    await session.refresh(tx, with_for_update=True)
    if tx.status is not TxStatus.PENDING:
        raise AppError(
            f"The operation is already {tx.status.value.lower()}.",
            code="not_pending",
            status=409,
        )
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
    return {**tx_out(tx), "card_id": str(card.id), "balance": card.balance}
