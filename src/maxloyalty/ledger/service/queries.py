"""Reading a card: balance with level progress and nearest expiry, and its history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.errors import CardNotFound, GuestNotFound, RestaurantRequired
from maxloyalty.guests.models import CardStatus, GuestCard
from maxloyalty.guests.service.cards import card_for_guest, ensure_restaurant
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.pagination import PageParams, paginate_newest
from maxloyalty.kit.timestamps import rfc3339
from maxloyalty.ledger.models import PointLot, PointTransaction, TxChannel, TxStatus, TxType
from maxloyalty.ledger.schemas import BalanceOut, LevelOut, NearestExpiry, NextLevel
from maxloyalty.ledger.service.levels import spend_for_level
from maxloyalty.loyalty.models import LoyaltySystem
from maxloyalty.loyalty.service import levels_of, next_level, program_for
from maxloyalty.network.models import Restaurant


async def guest_card(
    session: AsyncSession,
    principal: Principal,
    guest_id: uuid.UUID,
    restaurant_id: uuid.UUID | None,
) -> GuestCard:
    """The guest's card `principal` may read: a guest reads only their own; staff name the
    restaurant, or read the one card they can see (a card per restaurant needs the name)."""
    if principal.role is Role.GUEST and principal.subject != guest_id:
        raise GuestNotFound()
    if restaurant_id is not None:
        ensure_restaurant(principal, restaurant_id)
        system = await program_for(session, restaurant_id)
        return await card_for_guest(session, system, guest_id, restaurant_id)
    cards = list(
        await session.scalars(
            select(GuestCard).where(
                GuestCard.user_id == guest_id, GuestCard.status != CardStatus.DELETED
            )
        )
    )
    visible = [
        c for c in cards if c.restaurant_id is None or principal.can_see_restaurant(c.restaurant_id)
    ]
    if not visible:
        raise CardNotFound("This guest has no card here.")
    if len(visible) > 1:
        raise RestaurantRequired("The guest has a card per restaurant: pass restaurant_id.")
    return visible[0]


async def balance(session: AsyncSession, card: GuestCard, now: datetime) -> BalanceOut:
    system = await session.get(LoyaltySystem, card.loyalty_system_id)
    assert system is not None
    levels = await levels_of(session, system.id)
    level = next((lv for lv in levels if lv.id == card.level_id), None)
    upcoming = next_level(levels, level)
    spent = await spend_for_level(session, system, card, now)
    nearest = (
        await session.execute(
            select(PointLot.expires_at, func.sum(PointLot.remaining))
            .where(
                PointLot.card_id == card.id,
                PointLot.remaining > 0,
                PointLot.activated.is_(True),
            )
            .group_by(PointLot.expires_at)
            .order_by(PointLot.expires_at)
            .limit(1)
        )
    ).first()
    return BalanceOut(
        card_id=card.id,
        guest_id=card.user_id,
        code=card.code,
        status=card.status,
        program_type=system.type,
        balance=card.balance,
        pending_balance=card.pending_balance,
        lifetime_spent=card.lifetime_spent,
        level=LevelOut.of(level),
        next_level=NextLevel(
            name=upcoming.name,
            min_spent=upcoming.min_spent,
            remaining_spend=max(0, upcoming.min_spent - spent),
        )
        if upcoming
        else None,
        nearest_expiry=NearestExpiry(at=nearest[0], points=int(nearest[1])) if nearest else None,
    )


async def history(
    session: AsyncSession,
    card_id: uuid.UUID,
    params: PageParams,
    types: list[TxType] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    channels: list[TxChannel] | None = None,
) -> list[PointTransaction]:
    """Newest first; the cursor is the last row's id (ids are time-ordered)."""
    query = select(PointTransaction).where(PointTransaction.card_id == card_id)
    if types:
        query = query.where(PointTransaction.type.in_(types))
    if channels:
        query = query.where(PointTransaction.channel.in_(channels))
    if since:
        query = query.where(PointTransaction.created_at >= since)
    if until:
        query = query.where(PointTransaction.created_at < until)
    return list(await session.scalars(paginate_newest(query, PointTransaction.id, params)))


class LedgerRow(NamedTuple):
    tx: PointTransaction
    code: str

    @property
    def id(self) -> uuid.UUID:  # the page cursor's key
        return self.tx.id


async def transactions(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    status: TxStatus | None = None,
    restaurant_id: uuid.UUID | None = None,
    types: list[TxType] | None = None,
    author: uuid.UUID | None = None,
) -> list[LedgerRow]:
    """The network's ledger rows the caller may see (their restaurants'), newest first, each
    with its card's code: a shift's operations (`author`'s own), the manual ones awaiting
    approval."""
    query = select(PointTransaction, GuestCard.code).join(
        GuestCard, GuestCard.id == PointTransaction.card_id
    )
    if restaurant_id is not None:
        ensure_restaurant(principal, restaurant_id)
        query = query.where(PointTransaction.restaurant_id == restaurant_id)
    elif principal.restaurant_scope is not None:
        query = query.where(PointTransaction.restaurant_id.in_(principal.restaurant_scope))
    if status is not None:
        query = query.where(PointTransaction.status == status)
    if types:
        query = query.where(PointTransaction.type.in_(types))
    if author is not None:
        query = query.where(PointTransaction.created_by_user_id == author)
    rows = await session.execute(paginate_newest(query, PointTransaction.id, params))
    return [LedgerRow(tx, code) for tx, code in rows]


async def every_transaction(
    session: AsyncSession, card_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Every ledger row of these cards, oldest first, by card: one query however many (a
    person's copy of their data)."""
    if not card_ids:
        return {}
    t = PointTransaction
    rows = await session.execute(
        select(t, Restaurant.name)
        .outerjoin(Restaurant, Restaurant.id == t.restaurant_id)
        .where(t.card_id.in_(card_ids))
        .order_by(t.created_at, t.id)
    )
    found: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row, restaurant in rows:
        found.setdefault(row.card_id, []).append(
            {
                "id": str(row.id),
                "type": row.type.value,
                "status": row.status.value,
                "amount": row.amount,
                "created_at": rfc3339(row.created_at),
                "source": row.source.value,
                "channel": row.channel.value,
                "restaurant_id": str(row.restaurant_id) if row.restaurant_id else None,
                "restaurant": restaurant,
                "check_number": row.check_number,
                "check_amount": row.check_amount,
                "paid_amount": row.paid_amount,
                "discount_amount": row.discount_amount,
                "reason": row.reason,
                "reward_item_id": str(row.reward_item_id) if row.reward_item_id else None,
                "reverses_id": str(row.reverses_id) if row.reverses_id else None,
            }
        )
    return found
