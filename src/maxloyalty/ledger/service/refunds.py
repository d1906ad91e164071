"""Refunds of a posted check, whole or a share of it.

Refund rule (documented in the README): a refund of a share of a check returns that share
of the points redeemed on it (to the lots they came from, keeping their expiry; points whose
lot has expired meanwhile are not returned) and takes back that share of the points accrued
on it — from the accrual's own lot first, then from the rest of the balance, never below
zero. Accrued points the guest has already spent beyond the balance are not recovered; the
answer reports them as `unrecovered_points`. Shares are cumulative, so the last refund of a
check settles rounding exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from maxloyalty.guests.models import GuestCard
from maxloyalty.ledger.errors import CheckNotFound, RefundExceedsCheck
from maxloyalty.ledger.models import LedgerOperation, PointTransaction, TxStatus, TxType
from maxloyalty.ledger.schemas import CashierRequest, OperationEffect, PostedTransaction
from maxloyalty.ledger.service import core
from maxloyalty.ledger.service.context import Context
from maxloyalty.ledger.service.idempotency import check_key


@dataclass(frozen=True)
class _Check:
    """The posted check a refund applies to: its rows, and what earlier refunds reversed."""

    originals: list[PointTransaction]
    amount: int
    reversals: list[PointTransaction]

    @property
    def accrual(self) -> PointTransaction | None:
        return next((t for t in self.originals if t.type is TxType.ACCRUAL), None)

    @property
    def redemption(self) -> PointTransaction | None:
        return next((t for t in self.originals if t.type is TxType.REDEMPTION), None)

    @property
    def refunded_before(self) -> int:
        """Kopecks refunded by earlier refunds (each refund's rows carry its amount)."""
        return sum({t.operation_id: t.check_amount or 0 for t in self.reversals}.values())

    def reversed_of(self, original: PointTransaction | None) -> int:
        """Points actually taken or returned on `original` so far: a shortfall is owed
        still, and a later refund of the same check tries to take it again."""
        if original is None:
            return 0
        return sum(abs(t.amount) for t in self.reversals if t.reverses_id == original.id)

    @property
    def paid_total(self) -> int:
        accrual = self.accrual
        return accrual.paid_amount if accrual and accrual.paid_amount is not None else self.amount


@dataclass(frozen=True)
class _Share:
    """How much of the check is refunded once this refund is posted (shares are
    cumulative: the last refund settles rounding exactly)."""

    check: _Check
    refund: int

    @property
    def done(self) -> int:
        return self.check.refunded_before + self.refund

    @property
    def complete(self) -> bool:
        return self.done == self.check.amount

    def of(self, total: int) -> int:
        return total if self.complete else total * self.done // self.check.amount

    def owed(self, original: PointTransaction | None, total: int) -> int:
        """Points of `original` (of `total` points) this refund reverses."""
        return self.of(total) - self.check.reversed_of(original)

    @property
    def paid_refund(self) -> int:
        """The refunded share of what the guest paid."""
        paid = self.check.paid_total
        return self.of(paid) - paid * self.check.refunded_before // self.check.amount


async def refund(
    ctx: Context, op: LedgerOperation, card: GuestCard, request: CashierRequest
) -> OperationEffect:
    assert request.check_number is not None  # the request's validator requires it
    check = await _posted_check(ctx, card, check_key(request.restaurant_id, request.check_number))
    share = _share(check, request.amount)
    common: dict[str, Any] = {
        "check_number": request.check_number,
        "check_amount": share.refund,
    }
    accrual = check.accrual
    take = share.owed(accrual, accrual.amount) if accrual and accrual.amount > 0 else 0
    # The refunded spend goes on exactly one row: the accrual's reversal when there is one.
    rows = await _return_redeemed(ctx, op, card, share, common, carries_paid=take <= 0)
    unrecovered = 0
    if accrual is not None and take > 0:
        tx, unrecovered = await _take_back_accrued(ctx, op, card, share, accrual, take, common)
        rows.append(tx)
    if not rows:  # a discount check: nothing to reverse but the record of the refund
        rows.append(await _record_refund(ctx, op, card, share, common))
    _close(card, share, ctx)
    return OperationEffect(
        status="COMPLETED",
        transactions=[PostedTransaction.of(t) for t in rows],
        refunded_amount=share.refund,
        accrued=0,
        redeemed=0,
        returned_points=sum(t.amount for t in rows if t.amount > 0),
        reversed_points=-sum(t.amount for t in rows if t.amount < 0),
        discount=0,
        unrecovered_points=unrecovered,
    )


async def _posted_check(ctx: Context, card: GuestCard, business_key: str) -> _Check:
    """The check as posted on this card, with the reversals of earlier refunds."""
    original_op = await ctx.session.scalar(
        select(LedgerOperation).where(LedgerOperation.business_key == business_key)
    )
    if original_op is None or original_op.card_id != card.id:
        raise CheckNotFound("No such check on this card.")
    originals = list(
        await ctx.session.scalars(
            select(PointTransaction).where(PointTransaction.operation_id == original_op.id)
        )
    )
    amount = next(t.check_amount for t in originals if t.check_amount is not None)
    assert amount is not None
    reversals = list(
        await ctx.session.scalars(
            select(PointTransaction).where(
                PointTransaction.reverses_id.in_([t.id for t in originals]),
                PointTransaction.type == TxType.REVERSAL,
            )
        )
    )
    return _Check(originals, amount, reversals)


def _share(check: _Check, amount: int | None) -> _Share:
    """This refund: `amount` kopecks, or the rest of the check; never beyond the check."""
    left = check.amount - check.refunded_before
    refund = amount or left
    if refund <= 0 or refund > left:
        raise RefundExceedsCheck(f"{left} kopecks of this check are left to refund.")
    return _Share(check, refund)


async def _return_redeemed(
    ctx: Context,
    op: LedgerOperation,
    card: GuestCard,
    share: _Share,
    common: dict[str, Any],
    *,
    carries_paid: bool,
) -> list[PointTransaction]:
    """Give back the share of the points redeemed on the check, to their lots."""
    redemption = share.check.redemption
    if redemption is None:
        return []
    give = share.owed(redemption, -redemption.amount)
    if give <= 0:
        return []
    paid = {"paid_amount": share.paid_refund} if carries_paid else {}
    entry = ctx.entry(op.id, TxType.REVERSAL, reverses_id=redemption.id, **common, **paid)
    tx, lost = await core.give_back(ctx.session, card, entry, redemption, give)
    if tx is not None:
        return [tx]
    if lost:  # every point's lot expired meanwhile: the refund is still on the record
        return [await core.record_only(ctx.session, card, entry, 0, TxStatus.COMPLETED)]
    return []


async def _take_back_accrued(
    ctx: Context,
    op: LedgerOperation,
    card: GuestCard,
    share: _Share,
    accrual: PointTransaction,
    take: int,
    common: dict[str, Any],
) -> tuple[PointTransaction, int]:
    """Take back the share of the points accrued on the check; the row and the shortfall."""
    entry = ctx.entry(
        op.id, TxType.REVERSAL, reverses_id=accrual.id, paid_amount=share.paid_refund, **common
    )
    tx, unrecovered = await core.take_back(ctx.session, card, entry, take, first_lot_of=accrual.id)
    if tx is None:
        tx = await core.record_only(
            ctx.session, card, core.unrecovered(entry, unrecovered), 0, TxStatus.COMPLETED
        )
    return tx, unrecovered


async def _record_refund(
    ctx: Context, op: LedgerOperation, card: GuestCard, share: _Share, common: dict[str, Any]
) -> PointTransaction:
    entry = ctx.entry(
        op.id,
        TxType.REVERSAL,
        reverses_id=share.check.originals[0].id,
        paid_amount=share.paid_refund,
        **common,
    )
    return await core.record_only(ctx.session, card, entry, 0, TxStatus.COMPLETED)


def _close(card: GuestCard, share: _Share, ctx: Context) -> None:
    """The refunded spend leaves the card's lifetime; a whole refund reverses the check."""
    card.lifetime_spent = max(0, card.lifetime_spent - share.paid_refund)
    if share.complete:
        for original in share.check.originals:
            if original.status is TxStatus.COMPLETED:
                original.status, original.status_changed_at = TxStatus.REVERSED, ctx.now
