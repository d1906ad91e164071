"""Two-phase redemption: a till reserves points for an open order (a hold with a TTL), then
settles them with the closed check or lets them go.

A hold only lowers what other spends may take (`core.available`); the points stay in the
balance and in their lots until the check is committed. An ACTIVE hold past its
`expires_at` reserves nothing from that instant; the sweeper (`expire_due`, run by
`tasks`) only brings its status up to date.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.models import GuestCard
from maxloyalty.kit.db import Database, for_update
from maxloyalty.ledger.errors import (
    HoldCommitted,
    HoldNotFound,
    InsufficientPoints,
    RedemptionLimitExceeded,
)
from maxloyalty.ledger.models import HoldStatus, PointHold
from maxloyalty.ledger.service import core
from maxloyalty.loyalty.models import LoyaltySystem
from maxloyalty.loyalty.service import max_redeemable

log = structlog.get_logger(__name__)


async def lock_order(session: AsyncSession, integration_id: uuid.UUID, order_id: str) -> None:
    """Serialize everything done to one order (hold, commit, cancel, a webhook's accrual)
    for the rest of the transaction, whichever card each names. Taken before the ledger's
    locks, so they always come in one order: order, idempotency claim, card, hold."""
    key = func.hashtextextended(f"order:{integration_id}:{order_id}", 0)
    await session.execute(select(func.pg_advisory_xact_lock(key)))


def is_live(hold: PointHold, now: datetime) -> bool:
    return hold.status is HoldStatus.ACTIVE and hold.expires_at > now


async def latest_hold(
    session: AsyncSession, integration_id: uuid.UUID, order_id: str, *, lock: bool = False
) -> PointHold | None:
    query = (
        select(PointHold)
        .where(PointHold.integration_id == integration_id, PointHold.order_id == order_id)
        .order_by(PointHold.created_at.desc())
        .limit(1)
    )
    if lock:
        query = for_update(query)
    return await session.scalar(query)


def _close(hold: PointHold, status: HoldStatus, now: datetime) -> None:
    # A hold that ran out of time is EXPIRED, whatever was asked of it afterwards.
    hold.status = HoldStatus.EXPIRED if hold.expires_at <= now else status
    hold.closed_at = now


async def place(
    session: AsyncSession,
    system: LoyaltySystem,
    card: GuestCard,
    *,
    integration_id: uuid.UUID,
    order_id: str,
    points: int,
    check_amount: int,
    ttl: timedelta,
    now: datetime,
) -> PointHold:
    """Reserve `points` on the (locked) card for the order; a new hold for the same order
    replaces the previous one (the till re-printed the pre-check)."""
    previous = await latest_hold(session, integration_id, order_id, lock=True)
    if previous is not None and previous.status is HoldStatus.ACTIVE:
        _close(previous, HoldStatus.CANCELLED, now)
        await session.flush()
    free = await core.available(session, card, now)
    if points > free:
        raise InsufficientPoints(f"The card has {free} points free; {points} were asked for.")
    allowed = max_redeemable(system, free, check_amount)
    if points > allowed:
        raise RedemptionLimitExceeded(f"This check may take at most {allowed} points.")
    hold = PointHold(
        tenant_id=card.tenant_id,
        card_id=card.id,
        integration_id=integration_id,
        order_id=order_id,
        points=points,
        check_amount=check_amount,
        status=HoldStatus.ACTIVE,
        expires_at=now + ttl,
        created_at=now,
    )
    session.add(hold)
    await session.flush()
    return hold


async def cancel(
    session: AsyncSession, integration_id: uuid.UUID, order_id: str, now: datetime
) -> PointHold:
    """Release the order's hold; cancelling again answers the same."""
    hold = await latest_hold(session, integration_id, order_id, lock=True)
    if hold is None:
        raise HoldNotFound()
    if hold.status is HoldStatus.COMMITTED:
        raise HoldCommitted()
    if hold.status is HoldStatus.ACTIVE:
        _close(hold, HoldStatus.CANCELLED, now)
        await session.flush()
    return hold


def settle(hold: PointHold, now: datetime, *, spent: bool) -> None:
    """The order's check is closed: the held points were spent with it, or (the check
    named another card, or the hold had run out) they are released."""
    if spent:
        hold.status, hold.closed_at = HoldStatus.COMMITTED, now
    else:
        _close(hold, HoldStatus.CANCELLED, now)


async def expire_due(db: Database, now: datetime) -> int:
    """Mark the holds whose time ran out, tenant by tenant."""
    async with db.platform_session() as platform:
        tenants = list(
            await platform.scalars(
                select(PointHold.tenant_id)
                .where(PointHold.status == HoldStatus.ACTIVE, PointHold.expires_at <= now)
                .distinct()
            )
        )
    expired = 0
    for tenant_id in tenants:
        async with db.transaction(tenant_id) as session:
            result = await session.execute(
                update(PointHold)
                .where(PointHold.status == HoldStatus.ACTIVE, PointHold.expires_at <= now)
                .values(status=HoldStatus.EXPIRED, closed_at=now)
            )
            expired += result.rowcount  # type: ignore[attr-defined]
    if expired:
        log.info("holds_expired", count=expired)
    return expired
