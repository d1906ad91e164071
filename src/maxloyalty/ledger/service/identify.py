"""Finding a guest's card by QR, 6-digit code or phone, rate limited against enumeration.
A code is the card's static one or this minute's rotating one (the static first: a
rotating code never takes a static code's value); a QR is the static `ML1` or the
rotating `ML2`. A programme with `require_rotating_code` refuses the static two."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.config import Settings
from maxloyalty.guests.errors import CardNotFound, RotatingCodeRequired
from maxloyalty.guests.models import CardStatus, GuestCard, GuestProfile
from maxloyalty.guests.schemas import IdentifyRequest
from maxloyalty.guests.service.cards import card_for_guest, ensure_restaurant
from maxloyalty.guests.service.rotating import card_by_rotating_code
from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Principal
from maxloyalty.identity.service.contacts import normalize_phone, phone_index
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import NotFound
from maxloyalty.kit.ratelimit import RateLimiter
from maxloyalty.kit.signing import QrSigner
from maxloyalty.ledger.schemas import IdentifiedCard, LevelOut
from maxloyalty.ledger.service.core import held_points_of
from maxloyalty.loyalty.models import LoyaltySystem, ProgramType
from maxloyalty.loyalty.service import discount_percent, levels_of, max_redeemable, program_for


async def limit_lookups(limiter: RateLimiter, settings: Settings, principal: Principal) -> None:
    """Per caller and per network: guessing codes by brute force takes far too long."""
    await limiter.hit(settings.rate_limit_identify, "identify", str(principal.subject))
    await limiter.hit(
        settings.rate_limit_identify_tenant, "identify-tenant", str(principal.tenant_id)
    )


async def identify(
    session: AsyncSession,
    principal: Principal,
    limiter: RateLimiter,
    settings: Settings,
    qr: QrSigner,
    request: IdentifyRequest,
) -> IdentifiedCard:
    assert principal.tenant_id is not None
    ensure_restaurant(principal, request.restaurant_id)
    await limit_lookups(limiter, settings, principal)
    system = await program_for(session, request.restaurant_id)
    now = utcnow()
    found = await _find(session, system, qr, request, now)
    if found is None or found.card.status is CardStatus.DELETED:
        raise CardNotFound("No card matches.")
    return await describe_card(session, system, found.card, request.check_amount, found)


@dataclass(frozen=True)
class _Found:
    """A card, with what a till is shown of its guest read in the same statement."""

    card: GuestCard
    name: str | None
    held: int


def _with_guest(query: Select[GuestCard], now: datetime) -> Select[Any]:
    """`query` of cards, with each card's guest's name and the points tills hold on it."""
    name = (
        select(
            func.nullif(
                func.concat_ws(
                    " ",
                    func.nullif(GuestProfile.first_name, ""),
                    func.nullif(GuestProfile.last_name, ""),
                ),
                "",
            )
        )
        .where(GuestProfile.user_id == GuestCard.user_id)
        .limit(1)
        .scalar_subquery()
    )
    return query.add_columns(name, held_points_of(GuestCard.id, now))


async def _found(session: AsyncSession, query: Select[GuestCard], now: datetime) -> _Found | None:
    row = (await session.execute(_with_guest(query, now))).first()
    return None if row is None else _Found(row[0], row[1], int(row[2]))


async def describe_card(
    session: AsyncSession,
    system: LoyaltySystem,
    card: GuestCard,
    check_amount: int | None,
    found: _Found | None = None,
) -> IdentifiedCard:
    """What a till shows once the guest is known: who, level, balance, points free to
    spend (the balance less other orders' holds), discount, and this check's limit."""
    levels = await levels_of(session, system.id)
    level = next((lv for lv in levels if lv.id == card.level_id), None)
    if found is None:
        found = await _found(session, select(GuestCard).where(GuestCard.id == card.id), utcnow())
        assert found is not None
    free = max(0, card.balance - found.held)
    name = found.name
    return IdentifiedCard(
        guest_id=card.user_id,
        card_id=card.id,
        code=card.code,
        name=name or None,
        status=card.status,
        program_type=system.type,
        level=LevelOut.of(level),
        balance=card.balance,
        available=free,
        pending_balance=card.pending_balance,
        discount_percent=discount_percent(system, level)
        if system.type is ProgramType.DISCOUNT
        else Decimal(0),
        max_redeemable=max_redeemable(system, free, check_amount)
        if check_amount and system.type is ProgramType.POINTS
        else None,
    )


async def _find(
    session: AsyncSession,
    system: LoyaltySystem,
    qr: QrSigner,
    request: IdentifyRequest,
    now: datetime,
) -> _Found | None:
    """The card the request names; by static code or QR in one statement with its guest's
    name and holds (the hot path), by rotating code or phone with one more."""
    if request.code is not None:
        static = await _found(
            session,
            select(GuestCard).where(
                GuestCard.code == request.code,
                GuestCard.status == CardStatus.ACTIVE,
                GuestCard.loyalty_system_id == system.id,
            ),
            now,
        )
        if static is None:
            rotating = await card_by_rotating_code(session, system, request.code, now)
            return await _found_card(session, rotating, now)
        if system.require_rotating_code:
            raise RotatingCodeRequired()
        return static
    if request.qr is not None:
        if qr.is_rotating(request.qr):
            card_id = qr.rotating_card_id(system.tenant_id, request.qr, now)
        else:
            card_id = qr.card_id(system.tenant_id, request.qr)
            if system.require_rotating_code:
                raise RotatingCodeRequired()
        return await _found(session, select(GuestCard).where(GuestCard.id == card_id), now)
    assert request.phone is not None
    index = phone_index(normalize_phone(request.phone))
    user = await session.scalar(select(User.id).where(User.phone_hash == index))
    if user is None:
        return None
    try:
        card = await card_for_guest(session, system, user, request.restaurant_id)
    except NotFound:
        return None
    return await _found_card(session, card, now)


async def _found_card(
    session: AsyncSession, card: GuestCard | None, now: datetime
) -> _Found | None:
    if card is None:
        return None
    return await _found(session, select(GuestCard).where(GuestCard.id == card.id), now)
