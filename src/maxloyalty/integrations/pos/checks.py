"""A till's check as the generic POS API receives it, and what the programme makes of it.

Campaign effects join the quote through `EFFECT_SOURCES`: each source looks at the quote
(lines, card, level) and returns the effects it grants; their discounts and bonus points
are added to the quote's totals. The campaigns capability registers its source here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.models import GuestCard
from maxloyalty.integrations.pos.schemas import CheckLine, EffectOut, QuoteOut
from maxloyalty.loyalty.models import LoyaltyLevel, LoyaltySystem, ProgramType
from maxloyalty.loyalty.service import (
    KOPECKS_PER_POINT,
    accrual_points,
    discount_percent,
    max_redeemable,
    percent_of,
)


def lines_total(lines: list[CheckLine]) -> int:
    return sum(line.total for line in lines)


@dataclass(frozen=True)
class Effect:
    source: str  # e.g. "campaign:<id>"
    description: str
    discount: int = 0  # kopecks off the check
    bonus_points: int = 0


@dataclass
class Quote:
    system: LoyaltySystem
    card: GuestCard
    level: LoyaltyLevel | None
    lines: list[CheckLine]
    free_points: int
    effects: list[Effect] = field(default_factory=list)


EffectSource = Callable[[AsyncSession, Quote], Awaitable[list[Effect]]]
EFFECT_SOURCES: list[EffectSource] = []


async def calculate(session: AsyncSession, quote: Quote, points: int | None) -> QuoteOut:
    """Discount, points the check may take, points it would earn. Nothing is written."""
    for source in EFFECT_SOURCES:
        quote.effects += await source(session, quote)
    check = lines_total(quote.lines)
    extra_discount = min(check, sum(e.discount for e in quote.effects))
    due = check - extra_discount
    system, level = quote.system, quote.level
    if system.type is ProgramType.DISCOUNT:
        pct = discount_percent(system, level)
        discount = percent_of(due, pct)
        limit = spend = 0
    else:
        pct = Decimal(0)
        discount = 0
        limit = max_redeemable(system, quote.free_points, due)
        spend = min(points, limit) if points is not None else limit
    paid = due - discount - spend * KOPECKS_PER_POINT
    accrual = (
        accrual_points(paid, level, system.rounding) if system.type is ProgramType.POINTS else 0
    )
    return QuoteOut(
        card_id=quote.card.id,
        check_amount=check,
        discount_percent=str(pct),
        discount=discount + extra_discount,
        available=quote.free_points,
        max_redeemable=limit,
        points_to_spend=spend,
        paid_amount=paid,
        accrual=accrual + sum(e.bonus_points for e in quote.effects),
        effects=[EffectOut.model_validate(e.__dict__) for e in quote.effects],
    )
