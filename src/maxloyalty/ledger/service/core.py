"""Ledger primitives: every change of a card's points goes through here, with the card row
locked by the caller (`guests.service.lock_card`), so concurrent operations serialize per card.

Invariants kept by these functions (and checked by `verify`):
- card.balance == sum of COMPLETED (and later REVERSED) transaction amounts
  == sum(remaining of activated lots);
- card.pending_balance == sum(remaining of lots not yet activated);
- every lot: remaining == amount - sum(its allocations), 0 <= remaining <= amount.

Points a till has reserved (`point_holds`) stay in the balance until the check is
committed, but no other spend may take them: what can be spent is `available`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.models import GuestCard
from maxloyalty.kit.db import for_update
from maxloyalty.kit.ids import uuid7
from maxloyalty.ledger.errors import InsufficientPoints
from maxloyalty.ledger.models import (
    HoldStatus,
    LotAllocation,
    PointHold,
    PointLot,
    PointTransaction,
    TxChannel,
    TxSource,
    TxStatus,
    TxType,
)


def end_of_day(moment: datetime, zone: str) -> datetime:
    """The last instant of `moment`'s calendar day in `zone` (expiry is counted in days
    of the tenant's clock, not UTC's)."""
    local = moment.astimezone(ZoneInfo(zone))
    next_midnight = datetime.combine(local.date() + timedelta(days=1), time(), local.tzinfo)
    return next_midnight - timedelta(microseconds=1)


@dataclass(frozen=True)
class Entry:
    """What a transaction row records besides its amount."""

    operation_id: uuid.UUID
    type: TxType
    source: TxSource
    channel: TxChannel
    now: datetime
    source_id: str | None = None
    restaurant_id: uuid.UUID | None = None
    check_number: str | None = None
    check_amount: int | None = None
    paid_amount: int | None = None
    discount_amount: int | None = None
    level_id: uuid.UUID | None = None
    percentage: Any = None
    reason: str | None = None
    reverses_id: uuid.UUID | None = None
    reward_item_id: uuid.UUID | None = None
    created_by_user_id: uuid.UUID | None = None
    approved_by_user_id: uuid.UUID | None = None

    def row(self, card: GuestCard, amount: int, status: TxStatus) -> PointTransaction:
        fields = {k: v for k, v in self.__dict__.items() if k not in {"now"}}
        return PointTransaction(
            tenant_id=card.tenant_id,
            card_id=card.id,
            amount=amount,
            status=status,
            created_at=self.now,
            **fields,
        )


async def record_only(
    session: AsyncSession, card: GuestCard, entry: Entry, amount: int, status: TxStatus
) -> PointTransaction:
    """A row that moves no points now: a discount check (0), a manual operation awaiting
    approval (PENDING)."""
    tx = entry.row(card, amount, status)
    session.add(tx)
    await session.flush()
    return tx


async def credit(
    session: AsyncSession,
    card: GuestCard,
    entry: Entry,
    amount: int,
    *,
    expires_at: datetime,
    activates_at: datetime | None = None,
) -> PointTransaction:
    """Add `amount` points as a new lot; pending (not spendable) until `activates_at`."""
    if amount <= 0:
        raise ValueError("a credit must be positive")
    activated = activates_at is None or activates_at <= entry.now
    tx = entry.row(card, amount, TxStatus.COMPLETED if activated else TxStatus.PENDING)
    session.add(tx)
    await session.flush()
    await apply_credit(session, card, tx, expires_at=expires_at, activates_at=activates_at)
    return tx


async def apply_credit(
    session: AsyncSession,
    card: GuestCard,
    tx: PointTransaction,
    *,
    expires_at: datetime,
    activates_at: datetime | None = None,
) -> None:
    """The lot behind a credit row (new, or a manual credit just approved)."""
    activated = activates_at is None or activates_at <= tx.created_at
    session.add(
        PointLot(
            tenant_id=card.tenant_id,
            card_id=card.id,
            transaction_id=tx.id,
            amount=tx.amount,
            remaining=tx.amount,
            created_at=tx.created_at,
            activates_at=activates_at or tx.created_at,
            activated=activated,
            expires_at=expires_at,
        )
    )
    if activated:
        card.balance += tx.amount
    else:
        card.pending_balance += tx.amount
    await session.flush()


async def _draw(
    session: AsyncSession, tx: PointTransaction, lots: list[PointLot], amount: int
) -> int:
    """Allocate up to `amount` from `lots` in order; returns what was drawn."""
    drawn = 0
    for lot in lots:
        if drawn == amount:
            break
        take = min(lot.remaining, amount - drawn)
        if take <= 0:
            continue
        lot.remaining -= take
        drawn += take
        session.add(
            LotAllocation(
                tenant_id=tx.tenant_id,
                lot_id=lot.id,
                transaction_id=tx.id,
                amount=take,
                created_at=tx.created_at,
            )
        )
    return drawn


async def _open_lots(session: AsyncSession, card: GuestCard) -> list[PointLot]:
    """Spendable lots, soonest expiry first."""
    return list(
        await session.scalars(
            select(PointLot)
            .where(
                PointLot.card_id == card.id,
                PointLot.remaining > 0,
                PointLot.activated.is_(True),
            )
            .order_by(PointLot.expires_at, PointLot.created_at)
        )
    )


async def debit(
    session: AsyncSession,
    card: GuestCard,
    entry: Entry,
    amount: int,
    *,
    spending_hold: uuid.UUID | None = None,
) -> PointTransaction:
    """Spend `amount` points from the soonest-expiring lots; never below zero, never into
    points held for another order (`spending_hold` is the hold this spend settles)."""
    if amount <= 0:
        raise ValueError("a debit must be positive")
    ensure_balance(card, amount)
    tx = entry.row(card, -amount, TxStatus.COMPLETED)
    session.add(tx)
    await session.flush()
    await apply_debit(session, card, tx, spending_hold=spending_hold)
    return tx


def ensure_balance(card: GuestCard, amount: int) -> None:
    if card.balance < amount:
        raise InsufficientPoints(f"The card has {card.balance} points; {amount} were asked for.")


def held_points_of(
    card_id: Any, now: datetime, *, except_hold: uuid.UUID | None = None
) -> ScalarSelect[int]:
    """The points tills' live holds reserve on the card `card_id` names (a value, or a
    column of an enclosing query, so that a card's read brings them along)."""
    query = select(func.coalesce(func.sum(PointHold.points), 0)).where(
        PointHold.card_id == card_id,
        PointHold.status == HoldStatus.ACTIVE,
        PointHold.expires_at > now,
    )
    if except_hold is not None:
        query = query.where(PointHold.id != except_hold)
    return query.scalar_subquery()


async def held_points(
    session: AsyncSession,
    card_id: uuid.UUID,
    now: datetime,
    *,
    except_hold: uuid.UUID | None = None,
) -> int:
    """Points reserved on the card by tills' live holds."""
    held = held_points_of(card_id, now, except_hold=except_hold)
    return int(await session.scalar(select(held)) or 0)


async def available(
    session: AsyncSession,
    card: GuestCard,
    now: datetime,
    *,
    except_hold: uuid.UUID | None = None,
) -> int:
    """What a spend may take now: the balance less other orders' reservations."""
    held = await held_points(session, card.id, now, except_hold=except_hold)
    return max(0, card.balance - held)


async def ensure_available(
    session: AsyncSession,
    card: GuestCard,
    amount: int,
    now: datetime,
    *,
    spending_hold: uuid.UUID | None = None,
) -> int:
    """Refuse a spend of `amount` beyond the points free now; answer those points."""
    ensure_balance(card, amount)
    free = await available(session, card, now, except_hold=spending_hold)
    if free < amount:
        raise InsufficientPoints(
            f"The card has {free} points free ({card.balance - free} are held for open "
            f"orders); {amount} were asked for."
        )
    return free


async def apply_debit(
    session: AsyncSession,
    card: GuestCard,
    tx: PointTransaction,
    *,
    spending_hold: uuid.UUID | None = None,
) -> None:
    """Draw a debit row's points from the soonest-expiring lots."""
    amount = -tx.amount
    await ensure_available(session, card, amount, tx.created_at, spending_hold=spending_hold)
    drawn = await _draw(session, tx, await _open_lots(session, card), amount)
    if drawn != amount:  # the balance cache disagrees with the lots: refuse, loudly
        raise RuntimeError(f"card {card.id}: balance {card.balance} but lots hold {drawn}")
    card.balance -= amount
    await session.flush()


async def take_back(
    session: AsyncSession,
    card: GuestCard,
    entry: Entry,
    amount: int,
    *,
    first_lot_of: uuid.UUID,
) -> tuple[PointTransaction | None, int]:
    """Reverse a credit: take up to `amount` back, first from the credit's own lot, then
    from the card's other lots, never below zero. Returns the row (None if nothing could
    be taken) and the shortfall (points of the credit already spent and not recoverable)."""
    own = await session.scalar(
        for_update(select(PointLot).where(PointLot.transaction_id == first_lot_of))
    )
    if own is not None and not own.activated:
        # Still pending: the points were never spendable, so they simply go. The row stays
        # PENDING with its credit and completes with it, so the sums keep matching.
        taking = min(amount, own.remaining)
        tx = unrecovered(entry, amount - taking).row(card, -taking, TxStatus.PENDING)
        session.add(tx)
        await session.flush()
        card.pending_balance -= await _draw(session, tx, [own], taking)
        await session.flush()
        return tx, amount - taking
    wanted = min(amount, card.balance)
    if wanted <= 0:
        return None, amount
    tx = unrecovered(entry, amount - wanted).row(card, -wanted, TxStatus.COMPLETED)
    session.add(tx)
    await session.flush()
    lots = await _open_lots(session, card)
    if own is not None:
        lots.sort(key=lambda lot: lot.id != own.id)  # the credit's own lot first
    drawn = await _draw(session, tx, lots, wanted)
    card.balance -= drawn
    await session.flush()
    return tx, amount - drawn


UNRECOVERED = "unrecovered:"


def unrecovered(entry: Entry, points: int) -> Entry:
    """Note on a reversal row the points it should have taken but could not (rows are
    immutable, so this is written when the row is)."""
    return replace(entry, reason=f"{UNRECOVERED}{points}") if points else entry


async def give_back(
    session: AsyncSession, card: GuestCard, entry: Entry, spend: PointTransaction, amount: int
) -> tuple[PointTransaction | None, int]:
    """Reverse a spend: return up to `amount` points to the lots they came from, keeping
    those lots' expiry. Points whose lot has expired meanwhile are not returned (the
    guest would have lost them anyway); that part is the second value."""
    allocations = list(
        await session.execute(
            select(LotAllocation.lot_id, func.sum(LotAllocation.amount))
            .where(
                LotAllocation.lot_id.in_(
                    select(LotAllocation.lot_id).where(LotAllocation.transaction_id == spend.id)
                ),
                LotAllocation.transaction_id.in_(
                    select(PointTransaction.id).where(
                        (PointTransaction.id == spend.id)
                        | (PointTransaction.reverses_id == spend.id)
                    )
                ),
            )
            .group_by(LotAllocation.lot_id)
        )
    )
    still_out = {lot_id: int(total) for lot_id, total in allocations if total > 0}
    lots = list(
        await session.scalars(
            for_update(
                select(PointLot)
                .where(PointLot.id.in_(still_out), PointLot.expires_at > entry.now)
                .order_by(PointLot.expires_at.desc())
            )
        )
    )
    returned = 0
    pending: list[tuple[PointLot, int]] = []
    for lot in lots:
        give = min(still_out[lot.id], amount - returned, lot.amount - lot.remaining)
        if give <= 0:
            continue
        pending.append((lot, give))
        returned += give
    if returned == 0:
        return None, amount
    tx = entry.row(card, returned, TxStatus.COMPLETED)
    session.add(tx)
    await session.flush()
    for lot, give in pending:
        lot.remaining += give
        session.add(
            LotAllocation(
                tenant_id=card.tenant_id,
                lot_id=lot.id,
                transaction_id=tx.id,
                amount=-give,
                created_at=entry.now,
            )
        )
    card.balance += returned
    await session.flush()
    return tx, amount - returned


async def expire_lot(
    session: AsyncSession, card: GuestCard, lot: PointLot, now: datetime, operation_id: uuid.UUID
) -> PointTransaction | None:
    """Book an EXPIRATION for what is left in an expired lot (nothing if it is empty)."""
    if lot.remaining <= 0 or lot.expires_at > now or not lot.activated:
        return None
    entry = Entry(
        operation_id=operation_id,
        type=TxType.EXPIRATION,
        source=TxSource.SYSTEM,
        channel=TxChannel.SYSTEM,  # the clock's doing, even when a caller's operation books it
        now=now,
        reason="points expired",
        reverses_id=lot.transaction_id,
    )
    tx = entry.row(card, -lot.remaining, TxStatus.COMPLETED)
    session.add(tx)
    await session.flush()
    await _draw(session, tx, [lot], lot.remaining)
    card.balance += tx.amount
    await session.flush()
    return tx


async def activate_lot(session: AsyncSession, card: GuestCard, lot: PointLot, now: datetime) -> int:
    """Make a pending lot spendable once its time has come; returns the points moved."""
    if lot.activated or lot.activates_at > now:
        return 0
    lot.activated = True
    card.pending_balance -= lot.remaining
    card.balance += lot.remaining
    # The credit and any reversals booked while it was pending complete together.
    rows = await session.scalars(
        select(PointTransaction).where(
            (PointTransaction.id == lot.transaction_id)
            | (PointTransaction.reverses_id == lot.transaction_id),
            PointTransaction.status == TxStatus.PENDING,
        )
    )
    for tx in rows:
        tx.status, tx.status_changed_at = TxStatus.COMPLETED, now
    await session.flush()
    return lot.remaining


async def settle_due(session: AsyncSession, card: GuestCard, now: datetime) -> None:
    """Bring a locked card up to `now` before it is used: pending lots whose time came
    become spendable, expired lots are booked out. The hourly job does the same for cards
    nobody touches; doing it here means an operation never sees stale points."""
    lots = list(
        await session.scalars(
            for_update(
                select(PointLot)
                .where(
                    PointLot.card_id == card.id,
                    ((PointLot.activated.is_(False)) & (PointLot.activates_at <= now))
                    | ((PointLot.remaining > 0) & (PointLot.expires_at <= now)),
                )
                .order_by(PointLot.activates_at)
            )
        )
    )
    operation = uuid7()
    for lot in lots:
        await activate_lot(session, card, lot, now)
        await expire_lot(session, card, lot, now, operation)
