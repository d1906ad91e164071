"""A till's check as the generic POS API receives it, and what the programme makes of it.

Campaign effects join the quote through `EFFECT_SOURCES`: each source looks at the quote
(lines, card, level) and returns the effects it grants; their discounts and bonus points
are added to the quote's totals. The campaigns capability registers its source here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.models import GuestCard
from maxloyalty.loyalty.models import LoyaltyLevel, LoyaltySystem, ProgramType
from maxloyalty.loyalty.service import (
    KOPECKS_PER_POINT,
    accrual_points,
    discount_percent,
    max_redeemable,
    percent_of,
)


class CheckLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, description="The till's item code")
    name: str = Field(min_length=1, max_length=200)
    category: str | None = Field(default=None, max_length=200)
    price: int = Field(ge=0, le=10**9, description="Kopecks per unit")
    quantity: Decimal = Field(gt=0, le=10**4, decimal_places=3)

    @property
    def total(self) -> int:
        return int((self.price * self.quantity).to_integral_value(ROUND_HALF_UP))


class Payment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=64, description="cash, card, points, …")
    amount: int = Field(ge=0, le=10**10, description="Kopecks")


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


async def calculate(session: AsyncSession, quote: Quote, points: int | None) -> dict[str, Any]:
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
    return {
        "card_id": str(quote.card.id),
        "check_amount": check,
        "discount_percent": str(pct),
        "discount": discount + extra_discount,
        "available": quote.free_points,
        "max_redeemable": limit,
        "points_to_spend": spend,
        "paid_amount": paid,
        "accrual": accrual + sum(e.bonus_points for e in quote.effects),
        "effects": [e.__dict__ for e in quote.effects],
    }
