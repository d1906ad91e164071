"""A card's level as its spend decides it: the spend, the move, and re-evaluating a whole
programme (after its levels change, or as a rolling window slides)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.models import GuestCard
from maxloyalty.guests.service.cards import lock_card
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import Database
from maxloyalty.ledger.models import PointTransaction, TxStatus, TxType
from maxloyalty.loyalty.models import (
    LevelMetric,
    LoyaltyLevel,
    LoyaltySystem,
    TierChange,
    TierChangeReason,
)
from maxloyalty.loyalty.service import level_for, levels_of

BATCH = 500


async def spend_for_level(
    session: AsyncSession, system: LoyaltySystem, card: GuestCard, now: datetime
) -> int:
    """The spend that decides the level: lifetime, or the rolling window's."""
    if system.level_metric is LevelMetric.LIFETIME or not system.rolling_days:
        return card.lifetime_spent
    since = now - timedelta(days=system.rolling_days)
    paid = await session.scalar(
        select(func.coalesce(func.sum(PointTransaction.paid_amount), 0)).where(
            PointTransaction.card_id == card.id,
            PointTransaction.created_at >= since,
            PointTransaction.type == TxType.ACCRUAL,
            PointTransaction.status != TxStatus.CANCELLED,
        )
    )
    refunded = await session.scalar(
        select(func.coalesce(func.sum(PointTransaction.paid_amount), 0)).where(
            PointTransaction.card_id == card.id,
            PointTransaction.created_at >= since,
            PointTransaction.type == TxType.REVERSAL,
        )
    )
    return max(0, int(paid or 0) - int(refunded or 0))


async def reevaluate(
    session: AsyncSession,
    system: LoyaltySystem,
    levels: list[LoyaltyLevel],
    card: GuestCard,
    now: datetime,
    reason: TierChangeReason,
    operation_id: uuid.UUID | None = None,
) -> LoyaltyLevel | None:
    """Move the card to the level its spend earns; record and return the new level if it
    changed. Callers hold the card lock."""
    target = level_for(levels, await spend_for_level(session, system, card, now))
    if target is not None and target.id == card.level_id:
        return None
    if target is None and card.level_id is None:
        return None
    session.add(
        TierChange(
            tenant_id=card.tenant_id,
            card_id=card.id,
            from_level_id=card.level_id,
            to_level_id=target.id if target else None,
            reason=reason,
            operation_id=operation_id,
            created_at=now,
        )
    )
    card.level_id = target.id if target else None
    await session.flush()
    return target


async def reevaluate_program(
    db: Database,
    tenant_id: uuid.UUID,
    program_id: uuid.UUID,
    reason: TierChangeReason,
    now: datetime | None = None,
) -> None:
    """Move every card of the programme to the level its spend now earns, in batches of
    short transactions (each card locked as any ledger operation would)."""
    after: uuid.UUID | None = None
    while True:
        async with db.transaction(tenant_id) as session:
            query = select(GuestCard.id).where(GuestCard.loyalty_system_id == program_id)
            if after is not None:
                query = query.where(GuestCard.id > after)
            ids = list(await session.scalars(query.order_by(GuestCard.id).limit(BATCH)))
            if not ids:
                return
            system = await session.get(LoyaltySystem, program_id)
            if system is None:
                return
            levels = await levels_of(session, program_id)
            moment = now or utcnow()
            for card_id in ids:
                card = await lock_card(session, card_id)
                await reevaluate(session, system, levels, card, moment, reason)
        after = ids[-1]
