"""Programme rules: which programme applies where, levels, and what a check earns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record, snapshot
from maxloyalty.guests.models import GuestCard
from maxloyalty.kit.errors import AppError, Conflict, NotFound
from maxloyalty.ledger.models import PointTransaction, TxStatus, TxType
from maxloyalty.loyalty.models import (
    CardMode,
    LevelMetric,
    LoyaltyLevel,
    LoyaltySystem,
    ProgramType,
    Rounding,
    TierChange,
    TierChangeReason,
)
from maxloyalty.network.models import Restaurant

KOPECKS_PER_POINT = 100  # 1 point = 1 ruble of value

# name, min spend in rubles, percentage, birthday bonus, colour
DEFAULT_LEVELS = [
    ("BRONZE", 0, 5, 100, "#CD7F32"),
    ("SILVER", 30_000, 10, 200, "#C0C0C0"),
    ("GOLD", 100_000, 15, 300, "#FFD700"),
    ("PLATINUM", 250_000, 20, 500, "#E5E4E2"),
    ("VIP", 500_000, 25, 1000, "#8B0000"),
]


@dataclass(frozen=True)
class LevelSpec:
    name: str
    min_spent: int
    percentage: Decimal
    birthday_bonus: int = 0
    purchase_bonus: int = 0
    free_item_code: str | None = None
    color: str | None = None
    icon_url: str | None = None


def default_levels() -> list[LevelSpec]:
    return [
        LevelSpec(name, rubles * 100, Decimal(pct), birthday, color=color)
        for name, rubles, pct, birthday, color in DEFAULT_LEVELS
    ]


async def create_program(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    type: ProgramType,
    mode: CardMode,
    restaurant_id: uuid.UUID | None = None,
    levels: list[LevelSpec] | None = None,
    **settings: object,
) -> LoyaltySystem:
    if restaurant_id is not None and await session.get(Restaurant, restaurant_id) is None:
        raise NotFound("No such restaurant.", code="restaurant_not_found")
    existing = await session.scalar(
        select(LoyaltySystem.id).where(
            LoyaltySystem.restaurant_id.is_(None)
            if restaurant_id is None
            else LoyaltySystem.restaurant_id == restaurant_id
        )
    )
    if existing is not None:
        raise Conflict("A programme already exists here.", code="program_exists")
    system = LoyaltySystem(
        tenant_id=tenant_id, restaurant_id=restaurant_id, type=type, mode=mode, **settings
    )
    session.add(system)
    await session.flush()
    await _write_levels(session, system, levels or default_levels())
    await record(session, "program.created", "loyalty_system", system.id, after=snapshot(system))
    return system


async def _write_levels(
    session: AsyncSession, system: LoyaltySystem, levels: list[LevelSpec]
) -> list[LoyaltyLevel]:
    """Make `levels` the programme's levels: matched by name, updated in place; new ones
    added; the rest retired (kept for history). Cards are re-evaluated by a job."""
    thresholds = [level.min_spent for level in levels]
    names = [level.name for level in levels]
    if not levels or thresholds[0] != 0 or thresholds != sorted(set(thresholds)):
        raise AppError(
            "Levels need strictly increasing min_spent, starting at 0.",
            code="invalid_levels",
            status=422,
        )
    if len(set(names)) != len(names):
        raise AppError("Level names must differ.", code="invalid_levels", status=422)
    existing = {
        level.name: level
        for level in await session.scalars(
            select(LoyaltyLevel).where(LoyaltyLevel.loyalty_system_id == system.id)
        )
    }
    rows = []
    for position, spec in enumerate(levels, 1):
        row = existing.pop(spec.name, None) or LoyaltyLevel(
            tenant_id=system.tenant_id, loyalty_system_id=system.id
        )
        for field, value in spec.__dict__.items():
            setattr(row, field, value)
        row.position, row.is_active = position, True
        session.add(row)
        rows.append(row)
    for i, retired in enumerate(existing.values(), 1):
        retired.is_active, retired.position = False, -i
    await session.flush()
    return rows


async def replace_levels(
    session: AsyncSession, system: LoyaltySystem, levels: list[LevelSpec]
) -> list[LoyaltyLevel]:
    before = [
        (lv.name, lv.min_spent, str(lv.percentage)) for lv in await levels_of(session, system.id)
    ]
    rows = await _write_levels(session, system, levels)
    after = [(lv.name, lv.min_spent, str(lv.percentage)) for lv in rows]
    await record(
        session,
        "program.levels_replaced",
        "loyalty_system",
        system.id,
        before={"levels": before},
        after={"levels": after},
    )
    return rows


async def program_for(session: AsyncSession, restaurant_id: uuid.UUID) -> LoyaltySystem:
    """The restaurant's own programme, else the network's. The restaurant must be one of
    this tenant's (foreign keys would not stop a foreign one: they bypass RLS)."""
    if await session.get(Restaurant, restaurant_id) is None:
        raise NotFound("No such restaurant.", code="restaurant_not_found")
    system = await session.scalar(
        select(LoyaltySystem)
        .where(
            or_(LoyaltySystem.restaurant_id == restaurant_id, LoyaltySystem.restaurant_id.is_(None))
        )
        .order_by(LoyaltySystem.restaurant_id.is_(None))
        .limit(1)
    )
    if system is None:
        raise NotFound("No loyalty programme is set up here.", code="program_not_found")
    return system


async def levels_of(session: AsyncSession, system_id: uuid.UUID) -> list[LoyaltyLevel]:
    return list(
        await session.scalars(
            select(LoyaltyLevel)
            .where(LoyaltyLevel.loyalty_system_id == system_id, LoyaltyLevel.is_active.is_(True))
            .order_by(LoyaltyLevel.position)
        )
    )


def level_for(levels: list[LoyaltyLevel], spent: int) -> LoyaltyLevel | None:
    reached = [level for level in levels if level.min_spent <= spent]
    return reached[-1] if reached else None


def next_level(levels: list[LoyaltyLevel], current: LoyaltyLevel | None) -> LoyaltyLevel | None:
    position = current.position if current else 0
    higher = [level for level in levels if level.position > position]
    return higher[0] if higher else None


def percent_of(amount: int, percentage: Decimal) -> int:
    """floor(amount × percentage / 100), exactly (no floats)."""
    return int((Decimal(amount) * percentage / 100).to_integral_value(ROUND_FLOOR))


_ROUNDING = {
    Rounding.FLOOR: ROUND_FLOOR,
    Rounding.HALF_UP: ROUND_HALF_UP,
    Rounding.CEILING: ROUND_CEILING,
}


def accrual_points(
    paid_kopecks: int, level: LoyaltyLevel | None, rounding: Rounding = Rounding.FLOOR
) -> int:
    """Points for money paid: paid × level % / 100 in rubles, rounded as the programme says
    (down by default), plus the level's per-purchase bonus."""
    if level is None or paid_kopecks <= 0:
        return 0
    exact = Decimal(paid_kopecks) * level.percentage / 100 / KOPECKS_PER_POINT
    return int(exact.to_integral_value(_ROUNDING[rounding])) + level.purchase_bonus


def discount_percent(system: LoyaltySystem, level: LoyaltyLevel | None) -> Decimal:
    pct = level.percentage if level else Decimal(0)
    if system.discount_cap_percent is not None:
        pct = min(pct, system.discount_cap_percent)
    return pct


def max_redeemable(system: LoyaltySystem, free_points: int, check_kopecks: int) -> int:
    """Points this check may take: a share of the check, never above the points free to
    spend (the balance less what other orders hold)."""
    by_share = percent_of(check_kopecks, system.max_redeem_percent) // KOPECKS_PER_POINT
    return max(0, min(free_points, by_share))


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
