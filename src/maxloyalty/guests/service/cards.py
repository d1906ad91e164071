"""Guests and their cards: joining a network, registration at the till, card codes and
status, the guest list, and the guest's own profile (birthday, children, consents)."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.guests.errors import (
    BirthDateLocked,
    CardBlocked,
    CardDeleted,
    CardNotFound,
    ChildNotFound,
    CodeSpaceExhausted,
    ProfileNotFound,
    RestaurantRequired,
)
from maxloyalty.guests.models import (
    CardRotatingCode,
    CardStatus,
    GuestCard,
    GuestChild,
    GuestProfile,
    RegistrationSource,
)
from maxloyalty.guests.schemas import (
    ChildIn,
    ConsentIn,
    GuestCreate,
    GuestFilters,
    ProfileUpdate,
)
from maxloyalty.identity.errors import InvalidPhone
from maxloyalty.identity.models import Consent, ConsentKind, User, UserRole
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.service.contacts import normalize_phone, phone_index
from maxloyalty.kit import context
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import for_update, violated_constraint
from maxloyalty.kit.errors import refuse_nulls
from maxloyalty.kit.events import publish
from maxloyalty.kit.pagination import PageParams, paginate
from maxloyalty.kit.signing import window_of
from maxloyalty.loyalty.models import CardMode, LoyaltyLevel, LoyaltySystem
from maxloyalty.loyalty.service import level_for, levels_of, program_for
from maxloyalty.network.errors import RestaurantForbidden
from maxloyalty.network.service.restaurants import get_restaurant

_CODE_ATTEMPTS = 20


async def lock_code(session: AsyncSession, tenant_id: uuid.UUID, code: str) -> None:
    """Serialize, until the transaction ends, everyone giving out the 6-digit `code` in the
    network: a new card's static code and a rotating one live in different tables, and
    neither may take a value the other holds (a typed code must name one card)."""
    key = func.hashtextextended(f"card-code:{tenant_id}:{code}", 0)
    await session.execute(select(func.pg_advisory_xact_lock(key)))


async def _free_static_code(session: AsyncSession, tenant_id: uuid.UUID, code: str) -> bool:
    """Whether `code` may become a card's static code: no guest app shows it as this
    minute's rotating code (other active cards are kept off it by the unique index)."""
    await lock_code(session, tenant_id, code)
    shown = await session.scalar(
        select(
            exists().where(
                CardRotatingCode.tenant_id == tenant_id,
                CardRotatingCode.time_window >= window_of(utcnow()),
                CardRotatingCode.code == code,
            )
        )
    )
    return not shown


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
        code = f"{secrets.randbelow(1_000_000):06d}"
        if not await _free_static_code(session, system.tenant_id, code):
            continue
        card = GuestCard(
            tenant_id=system.tenant_id,
            user_id=user_id,
            loyalty_system_id=system.id,
            restaurant_id=card_restaurant,
            code=code,
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
    session: AsyncSession,
    system: LoyaltySystem,
    guest_id: uuid.UUID,
    restaurant_id: uuid.UUID,
    *,
    lock: bool = False,
) -> GuestCard:
    """The guest's card here; with `lock`, found and locked in one statement (as
    `lock_card` would lock it)."""
    card_restaurant = restaurant_id if system.mode is CardMode.SEPARATE else None
    query = select(GuestCard).where(
        GuestCard.user_id == guest_id,
        GuestCard.loyalty_system_id == system.id,
        GuestCard.status != CardStatus.DELETED,
        GuestCard.restaurant_id.is_(None)
        if card_restaurant is None
        else GuestCard.restaurant_id == card_restaurant,
    )
    card = await session.scalar(for_update(query) if lock else query)
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


# --- at the till: registration, a card's status -------------------------------------------


async def register_guest(
    session: AsyncSession, principal: Principal, data: GuestCreate
) -> tuple[User, GuestCard]:
    """Register a guest at the till (or find them) and hand out their card; what the till
    knows of them fills in what their profile still lacks."""
    ensure_restaurant(principal, data.restaurant_id)
    system = await program_for(session, data.restaurant_id)
    user = await find_or_create_user_by_phone(session, data.phone)
    card = await join_network(session, system, user, RegistrationSource.POS, data.restaurant_id)
    profile = await session.scalar(select(GuestProfile).where(GuestProfile.user_id == user.id))
    assert profile is not None
    for field in ("first_name", "last_name", "birth_date", "gender"):
        value = getattr(data, field)
        if value is not None and getattr(profile, field) is None:
            setattr(profile, field, value)
    await record(session, "guest.registered", "user", user.id, after={"card_id": str(card.id)})
    return user, card


async def change_card_status(
    session: AsyncSession,
    principal: Principal,
    card_id: uuid.UUID,
    status: CardStatus,
    reason: str | None,
) -> GuestCard:
    """Block, unblock or delete a card of the caller's restaurants (see `set_status`)."""
    card = await lock_card(session, card_id)
    if card.restaurant_id is not None:
        ensure_restaurant(principal, card.restaurant_id)
    await set_status(session, card, status, reason)
    return card


async def card_of(session: AsyncSession, principal: Principal, card_id: uuid.UUID) -> GuestCard:
    """A card the caller may see: staff see the tenant's, a guest only their own."""
    card = await session.get(GuestCard, card_id)
    if card is None or (principal.role is Role.GUEST and card.user_id != principal.subject):
        raise CardNotFound()
    return card


# --- the guest list -----------------------------------------------------------------------

GuestListRow = tuple[GuestCard, GuestProfile, User, LoyaltyLevel | None]


async def _guest_query(
    session: AsyncSession, principal: Principal, restaurant_id: uuid.UUID, filters: GuestFilters
) -> Select[*tuple[Any, ...]]:
    await get_restaurant(session, principal, restaurant_id)
    system = await program_for(session, restaurant_id)
    query: Select[*tuple[Any, ...]] = (
        select(GuestCard, GuestProfile, User, LoyaltyLevel)
        .join(GuestProfile, GuestProfile.user_id == GuestCard.user_id)
        .join(User, User.id == GuestCard.user_id)
        .outerjoin(LoyaltyLevel, LoyaltyLevel.id == GuestCard.level_id)
        .where(GuestCard.loyalty_system_id == system.id)
    )
    if system.mode is CardMode.SEPARATE:
        query = query.where(GuestCard.restaurant_id == restaurant_id)
    if q := filters.q:
        terms = [
            GuestProfile.first_name.ilike(f"%{q}%"),
            GuestProfile.last_name.ilike(f"%{q}%"),
            GuestCard.code == q,
        ]
        with contextlib.suppress(InvalidPhone):  # not a phone: the other terms still apply
            terms.append(User.phone_hash == phone_index(normalize_phone(q)))
        query = query.where(or_(*terms))
    if filters.level:
        query = query.where(LoyaltyLevel.name == filters.level.upper())
    if filters.status:
        query = query.where(GuestCard.status == filters.status)
    if filters.min_balance is not None:
        query = query.where(GuestCard.balance >= filters.min_balance)
    return query


async def list_guests(
    session: AsyncSession,
    principal: Principal,
    restaurant_id: uuid.UUID,
    filters: GuestFilters,
    paging: PageParams | None,
) -> list[GuestListRow]:
    """The guests whose cards work in this restaurant, by card id: a page (`paging`, with
    one row more than the limit, for `make_page`), or all of them (`None`)."""
    query = await _guest_query(session, principal, restaurant_id, filters)
    query = (
        query.order_by(GuestCard.id) if paging is None else paginate(query, GuestCard.id, paging)
    )
    rows: Sequence[Any] = (await session.execute(query)).all()
    return [(card, profile, user, level) for card, profile, user, level in rows]


# --- the guest's own profile --------------------------------------------------------------


async def own_profile(session: AsyncSession, principal: Principal) -> GuestProfile:
    profile = await session.scalar(
        select(GuestProfile).where(GuestProfile.user_id == principal.subject)
    )
    if profile is None:
        raise ProfileNotFound()
    return profile


async def children_of(session: AsyncSession, profile: GuestProfile) -> list[GuestChild]:
    return list(
        await session.scalars(
            select(GuestChild).where(GuestChild.profile_id == profile.id).order_by(GuestChild.name)
        )
    )


async def cards_of(session: AsyncSession, profile: GuestProfile) -> list[GuestCard]:
    return list(
        await session.scalars(select(GuestCard).where(GuestCard.user_id == profile.user_id))
    )


# Profile fields a PATCH may not clear with null (the others are the guest's to empty).
_PROFILE_REQUIRED = frozenset({"preferred_channel"})


async def update_profile(
    session: AsyncSession, principal: Principal, data: ProfileUpdate
) -> GuestProfile:
    """The guest changes their profile. The birthday is set once (it earns a bonus every
    year); staff can correct it."""
    profile = await own_profile(session, principal)
    changes = data.model_dump(exclude_unset=True)
    refuse_nulls(changes, _PROFILE_REQUIRED)
    if (
        "birth_date" in changes
        and profile.birth_date
        and changes["birth_date"] != profile.birth_date
    ):
        raise BirthDateLocked()
    for field, value in changes.items():
        setattr(profile, field, value)
    await session.flush()
    await session.refresh(profile)
    # The names of what changed, not the values: the log is append-only, and an erasure
    # must not leave the person's names and birthday behind in it.
    await record(
        session,
        "guest.profile_updated",
        "guest_profile",
        profile.id,
        after={"fields": sorted(changes)},
    )
    return profile


async def add_child(session: AsyncSession, principal: Principal, data: ChildIn) -> GuestProfile:
    profile = await own_profile(session, principal)
    child = GuestChild(tenant_id=profile.tenant_id, profile_id=profile.id, **data.model_dump())
    session.add(child)
    await session.flush()
    await record(session, "guest.child_added", "guest_child", child.id)
    return profile


async def remove_child(session: AsyncSession, principal: Principal, child_id: uuid.UUID) -> None:
    profile = await own_profile(session, principal)
    child = await session.get(GuestChild, child_id)
    if child is None or child.profile_id != profile.id:
        raise ChildNotFound()
    await session.delete(child)
    await record(session, "guest.child_removed", "guest_child", child_id)


async def record_consent(session: AsyncSession, principal: Principal, data: ConsentIn) -> Consent:
    """Give or withdraw a consent; each decision is kept with its time and address."""
    assert principal.tenant_id is not None
    consent = Consent(
        tenant_id=principal.tenant_id,
        user_id=principal.subject,
        kind=data.kind,
        granted=data.granted,
        ip_address=context.client.get().ip,
        source="GUEST_APP",
    )
    session.add(consent)
    await session.flush()
    await record(
        session, "guest.consent", "consent", consent.id, after=data.model_dump(mode="json")
    )
    return consent


async def consents_given(session: AsyncSession, principal: Principal) -> dict[ConsentKind, bool]:
    """The guest's standing decision per kind: the latest one wins (a guest has a handful)."""
    rows = await session.execute(
        select(Consent.kind, Consent.granted)
        .where(Consent.user_id == principal.subject)
        .order_by(Consent.recorded_at, Consent.id)
    )
    return dict(rows.all())


async def record_consents(
    session: AsyncSession, principal: Principal, decisions: dict[ConsentKind, bool]
) -> None:
    """The guest's answers to the consent form, one decision per kind."""
    for kind, granted in decisions.items():
        await record_consent(session, principal, ConsentIn(kind=kind, granted=granted))


async def card_to_show(
    session: AsyncSession, principal: Principal, wanted: str | None
) -> tuple[GuestCard, list[GuestCard], GuestProfile]:
    """The guest's card a page shows (the one asked for, else the first), all of them, and
    the guest's profile."""
    profile = await own_profile(session, principal)
    cards = [c for c in await cards_of(session, profile) if c.status is not CardStatus.DELETED]
    chosen = next((c for c in cards if str(c.id) == wanted), cards[0] if cards else None)
    if chosen is None:
        raise CardNotFound("You have no card in this network yet.")
    return chosen, cards, profile
