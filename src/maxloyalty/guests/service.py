"""Guests and their cards: joining a network, card identifiers, identification."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.guests.errors import (
    CardBlocked,
    CardDeleted,
    CardNotFound,
    CodeSpaceExhausted,
    RestaurantRequired,
)
from maxloyalty.guests.models import CardStatus, GuestCard, GuestProfile, RegistrationSource
from maxloyalty.identity.contacts import normalize_phone, phone_index
from maxloyalty.identity.models import User, UserRole
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.db import for_update, violated_constraint
from maxloyalty.kit.events import publish
from maxloyalty.loyalty.models import CardMode, LoyaltySystem
from maxloyalty.loyalty.service import level_for, levels_of
from maxloyalty.network.errors import RestaurantForbidden

_CODE_ATTEMPTS = 20


async def _profile(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> GuestProfile:
    profile = await session.scalar(select(GuestProfile).where(GuestProfile.user_id == user_id))
    if profile is None:
        profile = GuestProfile(tenant_id=tenant_id, user_id=user_id)
        session.add(profile)
        await session.flush()
    return profile


async def ensure_card(
    session: AsyncSession,
    system: LoyaltySystem,
    user_id: uuid.UUID,
    source: RegistrationSource,
    restaurant_id: uuid.UUID | None = None,
) -> GuestCard:
    """The guest's card under `system` (one per network, or per restaurant in SEPARATE
    mode), issued with a fresh 6-digit code if there is none yet."""
    card_restaurant = restaurant_id if system.mode is CardMode.SEPARATE else None
    if system.mode is CardMode.SEPARATE and card_restaurant is None:
        raise RestaurantRequired()
    existing = await session.scalar(
        select(GuestCard).where(
            GuestCard.user_id == user_id,
            GuestCard.status != CardStatus.DELETED,
            GuestCard.restaurant_id.is_(None)
            if card_restaurant is None
            else GuestCard.restaurant_id == card_restaurant,
        )
    )
    if existing is not None:
        return existing
    await _profile(session, system.tenant_id, user_id)
    first_level = level_for(await levels_of(session, system.id), 0)
    for _ in range(_CODE_ATTEMPTS):
        card = GuestCard(
            tenant_id=system.tenant_id,
            user_id=user_id,
            loyalty_system_id=system.id,
            restaurant_id=card_restaurant,
            code=f"{secrets.randbelow(1_000_000):06d}",
            registration_source=source,
            level_id=first_level.id if first_level else None,
        )
        try:
            async with session.begin_nested():
                session.add(card)
                await session.flush()
        except IntegrityError as exc:
            if violated_constraint(exc) == "uq_guest_cards_active_code":
                continue  # that code is taken in this network: draw another
            raise
        await record(session, "card.issued", "guest_card", card.id, after={"source": source.value})
        await publish(
            session,
            system.tenant_id,
            "guest.created",
            {"guest_id": str(user_id), "card_id": str(card.id), "source": source.value},
        )
        return card
    raise CodeSpaceExhausted()


async def join_network(
    session: AsyncSession,
    system: LoyaltySystem,
    user: User,
    source: RegistrationSource,
    restaurant_id: uuid.UUID | None = None,
) -> GuestCard:
    """Make `user` a guest of the network (role, profile) and hand out their card."""
    role = await session.scalar(
        select(UserRole).where(
            UserRole.user_id == user.id,
            UserRole.role == Role.GUEST,
            UserRole.tenant_id == system.tenant_id,
        )
    )
    if role is None:
        session.add(UserRole(tenant_id=system.tenant_id, user_id=user.id, role=Role.GUEST))
        await session.flush()
    return await ensure_card(session, system, user.id, source, restaurant_id)


async def find_or_create_user_by_phone(session: AsyncSession, phone: str) -> User:
    e164 = normalize_phone(phone)
    index = phone_index(e164)
    user = await session.scalar(select(User).where(User.phone_hash == index))
    if user is None:
        user = User(phone=e164, phone_hash=index, role=Role.GUEST)
        session.add(user)
        await session.flush()
    return user


async def lock_card(session: AsyncSession, card_id: uuid.UUID) -> GuestCard:
    """Lock the card row: balances change only under this lock."""
    card = await session.scalar(for_update(select(GuestCard).where(GuestCard.id == card_id)))
    if card is None:
        raise CardNotFound()
    return card


async def card_for_guest(
    session: AsyncSession, system: LoyaltySystem, guest_id: uuid.UUID, restaurant_id: uuid.UUID
) -> GuestCard:
    card_restaurant = restaurant_id if system.mode is CardMode.SEPARATE else None
    card = await session.scalar(
        select(GuestCard).where(
            GuestCard.user_id == guest_id,
            GuestCard.loyalty_system_id == system.id,
            GuestCard.status != CardStatus.DELETED,
            GuestCard.restaurant_id.is_(None)
            if card_restaurant is None
            else GuestCard.restaurant_id == card_restaurant,
        )
    )
    if card is None:
        raise CardNotFound("This guest has no card here.")
    return card


async def set_status(
    session: AsyncSession, card: GuestCard, status: CardStatus, reason: str | None
) -> None:
    """Block, unblock or delete a card locked by the caller (`lock_card`). A deleted card
    stays deleted: it identifies no one any more, and its 6-digit code is free again."""
    if card.status is CardStatus.DELETED:
        raise CardDeleted()
    before = card.status.value
    card.status = status
    await session.flush()
    await record(
        session,
        "card.status_changed",
        "guest_card",
        card.id,
        before={"status": before},
        after={"status": status.value, "reason": reason},
    )
    await publish(
        session,
        card.tenant_id,
        "card.status_changed",
        {"card_id": str(card.id), "guest_id": str(card.user_id), "status": status.value},
    )


def ensure_usable(card: GuestCard) -> None:
    if card.status is not CardStatus.ACTIVE:
        raise CardBlocked(f"The card is {card.status.value.lower()}.")


def ensure_restaurant(principal: Principal, restaurant_id: uuid.UUID) -> None:
    if not principal.can_see_restaurant(restaurant_id):
        raise RestaurantForbidden()
