"""A guest's data in the session's network, for the person's copy of it and its erasure.

Erasure keeps the ledger whole: cards keep their owner, amounts and history, but are
DELETED (no code, QR or phone finds them any more), and the profile keeps only its row.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import snapshot
from maxloyalty.guests.models import CardStatus, GuestCard, GuestChild, GuestProfile
from maxloyalty.guests.service.cards import lock_card, set_status
from maxloyalty.kit.timestamps import rfc3339, rfc3339_or_none
from maxloyalty.ledger.service.queries import every_transaction
from maxloyalty.loyalty.models import LoyaltyLevel

# What a profile holds about the person; `preferred_channel` is a setting, not about them.
PERSONAL_FIELDS = (
    "first_name",
    "last_name",
    "middle_name",
    "gender",
    "birth_date",
    "city",
    "avatar_url",
    "telegram_username",
)
ERASURE_REASON = "erasure request"


async def _profile(session: AsyncSession, user_id: uuid.UUID) -> GuestProfile | None:
    return await session.scalar(select(GuestProfile).where(GuestProfile.user_id == user_id))


def _child(child: GuestChild) -> dict[str, Any]:
    return {
        "id": str(child.id),
        "name": child.name,
        "birth_date": child.birth_date.isoformat() if child.birth_date else None,
    }


def _card(card: GuestCard, level: str | None, history: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": str(card.id),
        "code": card.code,
        "status": card.status.value,
        "restaurant_id": str(card.restaurant_id) if card.restaurant_id else None,
        "level": level,
        "balance": card.balance,
        "pending_balance": card.pending_balance,
        "lifetime_spent": card.lifetime_spent,
        "total_visits": card.total_visits,
        "last_visit_at": rfc3339_or_none(card.last_visit_at),
        "registration_source": card.registration_source.value,
        "created_at": rfc3339(card.created_at),
        "transactions": history,
    }


async def export(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """The profile (every field), children, and cards with every ledger row."""
    profile = await _profile(session, user_id)
    children = await session.scalars(
        select(GuestChild)
        .join(GuestProfile, GuestProfile.id == GuestChild.profile_id)
        .where(GuestProfile.user_id == user_id)
        .order_by(GuestChild.name)
    )
    cards = (
        await session.execute(
            select(GuestCard, LoyaltyLevel.name)
            .outerjoin(LoyaltyLevel, LoyaltyLevel.id == GuestCard.level_id)
            .where(GuestCard.user_id == user_id)
            .order_by(GuestCard.created_at)
        )
    ).all()
    history = await every_transaction(session, [card.id for card, _ in cards])
    return {
        "profile": snapshot(profile) if profile else None,
        "children": [_child(c) for c in children],
        "cards": [_card(card, level, history.get(card.id, [])) for card, level in cards],
    }


async def erase(session: AsyncSession, user_id: uuid.UUID) -> None:
    """The profile's personal fields and the children go; every card is DELETED."""
    profile = await _profile(session, user_id)
    if profile is not None:
        for field in PERSONAL_FIELDS:
            setattr(profile, field, None)
        await session.execute(delete(GuestChild).where(GuestChild.profile_id == profile.id))
    live = await session.scalars(
        select(GuestCard.id)
        .where(GuestCard.user_id == user_id, GuestCard.status != CardStatus.DELETED)
        .order_by(GuestCard.id)  # several locks: always in one order
    )
    for card_id in list(live):
        card = await lock_card(session, card_id)
        await set_status(session, card, CardStatus.DELETED, ERASURE_REASON)
    await session.flush()
