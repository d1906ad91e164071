"""Finding a guest's card by QR, 6-digit code or phone, rate limited against enumeration.
A code is the card's static one or this minute's rotating one (the static first: a
rotating code never takes a static code's value); a QR is the static `ML1` or the
rotating `ML2`. A programme with `require_rotating_code` refuses the static two."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
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
from maxloyalty.ledger.service.core import available
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
    card = await _find(session, system, qr, request, utcnow())
    if card is None or card.status is CardStatus.DELETED:
        raise CardNotFound("No card matches.")
    return await describe_card(session, system, card, request.check_amount)


async def describe_card(
    session: AsyncSession, system: LoyaltySystem, card: GuestCard, check_amount: int | None
) -> IdentifiedCard:
    """What a till shows once the guest is known: who, level, balance, points free to
    spend (the balance less other orders' holds), discount, and this check's limit."""
    levels = await levels_of(session, system.id)
    level = next((lv for lv in levels if lv.id == card.level_id), None)
    profile = await session.scalar(select(GuestProfile).where(GuestProfile.user_id == card.user_id))
    name = " ".join(p for p in (profile.first_name, profile.last_name) if p) if profile else ""
    free = await available(session, card, utcnow())
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
) -> GuestCard | None:
    if request.code is not None:
        static = await session.scalar(
            select(GuestCard).where(
                GuestCard.code == request.code,
                GuestCard.status == CardStatus.ACTIVE,
                GuestCard.loyalty_system_id == system.id,
            )
        )
        if static is None:
            return await card_by_rotating_code(session, system, request.code, now)
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
        return await session.get(GuestCard, card_id)
    assert request.phone is not None
    index = phone_index(normalize_phone(request.phone))
    user = await session.scalar(select(User.id).where(User.phone_hash == index))
    if user is None:
        return None
    try:
        return await card_for_guest(session, system, user, request.restaurant_id)
    except NotFound:
        return None
