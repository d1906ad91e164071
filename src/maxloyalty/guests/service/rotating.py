"""A card's rotating code and QR: issued to its guest for the current minute, found again at
identification, pruned once their minute has passed."""

from __future__ import annotations

import math
import uuid
from datetime import datetime

from sqlalchemy import CHAR, BigInteger, DateTime, Uuid, delete, exists, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.errors import CodeSpaceExhausted
from maxloyalty.guests.models import CardRotatingCode, CardStatus, GuestCard
from maxloyalty.guests.schemas import RotatingCodeOut
from maxloyalty.guests.service.cards import card_of, ensure_usable, lock_code
from maxloyalty.identity.principal import Principal
from maxloyalty.kit.db import Database
from maxloyalty.kit.signing import QrSigner, RotatingCodes, window_end, window_of
from maxloyalty.loyalty.models import LoyaltySystem

# Derivations tried before giving up (each taken value moves on to the next counter).
_ATTEMPTS = 20


async def rotating_code(
    session: AsyncSession,
    principal: Principal,
    codes: RotatingCodes,
    qr: QrSigner,
    card_id: uuid.UUID,
    now: datetime,
) -> RotatingCodeOut:
    """The guest's own card's code and QR for the window `now` is in: the same answer all
    through the window, however often it is asked for."""
    card = await card_of(session, principal, card_id)
    ensure_usable(card)
    window = window_of(now)
    expires_at = window_end(window)
    code = await _issued(session, card, window) or await _issue(
        session, codes, card, window, expires_at
    )
    return RotatingCodeOut(
        code=code,
        qr=qr.rotating_payload(card.tenant_id, card.id, window),
        expires_at=expires_at,
        valid_seconds=math.ceil((expires_at - now).total_seconds()),
    )


async def _issued(session: AsyncSession, card: GuestCard, window: int) -> str | None:
    return await session.scalar(
        select(CardRotatingCode.code).where(
            CardRotatingCode.tenant_id == card.tenant_id,
            CardRotatingCode.card_id == card.id,
            CardRotatingCode.time_window == window,
        )
    )


async def _issue(
    session: AsyncSession,
    codes: RotatingCodes,
    card: GuestCard,
    window: int,
    expires_at: datetime,
) -> str:
    """Record the card's first derivation that is free: not another card's code in this
    window, not any active card's static code. Under the code's lock (`lock_code`), so a
    new card cannot be handed the same value meanwhile."""
    for counter in range(_ATTEMPTS):
        candidate = codes.code(card.tenant_id, card.id, window, counter)
        await lock_code(session, card.tenant_id, candidate)
        static_taken = exists().where(
            GuestCard.tenant_id == card.tenant_id,
            GuestCard.status == CardStatus.ACTIVE,
            GuestCard.code == candidate,
        )
        row = select(
            literal(card.tenant_id, Uuid()),
            literal(card.id, Uuid()),
            literal(window, BigInteger()),
            literal(candidate, CHAR(6)),
            literal(expires_at, DateTime(timezone=True)),
        ).where(~static_taken)
        inserted: str | None = await session.scalar(
            insert(CardRotatingCode)
            .from_select(["tenant_id", "card_id", "time_window", "code", "expires_at"], row)
            .on_conflict_do_nothing()
            .returning(CardRotatingCode.code)
        )
        if inserted is not None:
            return inserted
        # Nothing written: the value is taken, or a concurrent request issued this card's
        # code for the window first (its row is what we answer then).
        if (issued := await _issued(session, card, window)) is not None:
            return issued
    raise CodeSpaceExhausted()


async def card_by_rotating_code(
    session: AsyncSession, system: LoyaltySystem, code: str, now: datetime
) -> GuestCard | None:
    """The active card of `system` showing `code` in the window `now` is in; a code of a
    past window finds nothing."""
    found: GuestCard | None = await session.scalar(
        select(GuestCard)
        .join(
            CardRotatingCode,
            (CardRotatingCode.tenant_id == GuestCard.tenant_id)
            & (CardRotatingCode.card_id == GuestCard.id),
        )
        .where(
            CardRotatingCode.tenant_id == system.tenant_id,
            CardRotatingCode.time_window == window_of(now),
            CardRotatingCode.code == code,
            GuestCard.status == CardStatus.ACTIVE,
            GuestCard.loyalty_system_id == system.id,
        )
    )
    return found


async def prune(db: Database, now: datetime) -> int:
    """Delete the codes whose window has ended, network by network."""
    async with db.platform_session() as platform:
        tenants = list(
            await platform.scalars(
                select(CardRotatingCode.tenant_id)
                .where(CardRotatingCode.expires_at <= now)
                .distinct()
            )
        )
    pruned = 0
    for tenant_id in tenants:
        async with db.transaction(tenant_id) as session:
            result = await session.execute(
                delete(CardRotatingCode).where(
                    CardRotatingCode.tenant_id == tenant_id, CardRotatingCode.expires_at <= now
                )
            )
            pruned += result.rowcount  # type: ignore[attr-defined]
    return pruned
