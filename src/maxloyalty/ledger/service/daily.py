"""Periodic ledger work (run by `tasks`), hourly, for every tenant in its own time zone:
- activate pending lots whose time has come;
- expire lots past their end of day (EXPIRATION rows);
- birthday bonuses, once a year per card, from the guest's local midnight;
- reminders (outbox events) before points expire.
Every step is safe to run twice: expiry and activation look at lot state under the card
lock, birthdays and reminders are keyed in `ledger_operations`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Integer, and_, cast, extract, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.models import CardStatus, GuestCard, GuestProfile
from maxloyalty.guests.service.cards import lock_card
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import Database
from maxloyalty.kit.events import publish
from maxloyalty.kit.ids import uuid7
from maxloyalty.kit.timestamps import rfc3339
from maxloyalty.ledger.models import LedgerOperation, PointLot, TxChannel, TxSource, TxType
from maxloyalty.ledger.service import core
from maxloyalty.ledger.service.idempotency import Replay, claim, request_hash
from maxloyalty.ledger.service.levels import reevaluate_program
from maxloyalty.loyalty.models import LevelMetric, LoyaltyLevel, LoyaltySystem, TierChangeReason
from maxloyalty.network.models import Tenant

log = structlog.get_logger(__name__)
BATCH = 500


async def _tenants(db: Database) -> list[Tenant]:
    async with db.platform_session() as platform:
        return list(await platform.scalars(select(Tenant)))


async def activate_and_expire(db: Database, tenant_id: uuid.UUID, now: datetime) -> tuple[int, int]:
    """(lots activated, lots expired), each card in its own short transaction."""
    activated = expired = 0
    async with db.transaction(tenant_id) as session:
        card_ids = list(
            await session.scalars(
                select(PointLot.card_id)
                .where(
                    or_(
                        and_(PointLot.activated.is_(False), PointLot.activates_at <= now),
                        and_(PointLot.remaining > 0, PointLot.expires_at <= now),
                    )
                )
                .distinct()
            )
        )
    for card_id in card_ids:
        async with db.transaction(tenant_id) as session:
            card = await lock_card(session, card_id)
            lots = await session.scalars(
                select(PointLot)
                .where(PointLot.card_id == card_id)
                .where(
                    or_(
                        and_(PointLot.activated.is_(False), PointLot.activates_at <= now),
                        and_(PointLot.remaining > 0, PointLot.expires_at <= now),
                    )
                )
                .order_by(PointLot.activates_at)
            )
            operation = uuid7()
            for lot in lots:
                if await core.activate_lot(session, card, lot, now):
                    activated += 1
                if await core.expire_lot(session, card, lot, now, operation):
                    expired += 1
    return activated, expired


def _birthday_today(zone: ZoneInfo, now: datetime) -> tuple[date, list[tuple[int, int]]]:
    """The local date, and the (month, day) pairs celebrating on it: 29 February counts
    on 28 February in years without it."""
    today = now.astimezone(zone).date()
    days = [(today.month, today.day)]
    if (today.month, today.day) == (2, 28):
        try:
            date(today.year, 2, 29)
        except ValueError:
            days.append((2, 29))
    return today, days


async def birthday_bonuses(db: Database, tenant: Tenant, now: datetime) -> int:
    zone = ZoneInfo(tenant.timezone)
    today, days = _birthday_today(zone, now)
    credited = 0
    async with db.transaction(tenant.id) as session:
        matches = or_(
            *(
                and_(
                    extract("month", GuestProfile.birth_date) == month,
                    extract("day", GuestProfile.birth_date) == day,
                )
                for month, day in days
            )
        )
        rows = list(
            await session.execute(
                select(GuestCard.id, LoyaltyLevel.birthday_bonus)
                .join(GuestProfile, GuestProfile.user_id == GuestCard.user_id)
                .join(LoyaltyLevel, LoyaltyLevel.id == GuestCard.level_id)
                .where(
                    matches,
                    GuestCard.status == CardStatus.ACTIVE,
                    LoyaltyLevel.birthday_bonus > 0,
                )
            )
        )
    for card_id, bonus in rows:
        async with db.transaction(tenant.id) as session:
            if await _credit_birthday(session, tenant, card_id, bonus, today, now):
                credited += 1
    return credited


async def _credit_birthday(
    session: AsyncSession,
    tenant: Tenant,
    card_id: uuid.UUID,
    bonus: int,
    today: date,
    now: datetime,
) -> bool:
    claimed = await claim(
        session,
        tenant.id,
        kind="BIRTHDAY",
        fingerprint=request_hash("birthday", str(card_id), today.year),
        idempotency_key=None,
        business_key=f"birthday:{card_id}:{today.year}",
    )
    if isinstance(claimed, Replay):
        return False
    card = await lock_card(session, card_id)
    system = await session.get(LoyaltySystem, card.loyalty_system_id)
    assert system is not None
    entry = core.Entry(
        operation_id=claimed.id,
        type=TxType.BIRTHDAY,
        source=TxSource.SYSTEM,
        channel=TxChannel.SYSTEM,
        now=now,
        level_id=card.level_id,
        reason=f"birthday {today.year}",
    )
    expires = core.end_of_day(now + timedelta(days=system.expiry_days), tenant.timezone)
    tx = await core.credit(session, card, entry, bonus, expires_at=expires)
    claimed.card_id, claimed.response = card.id, {"transaction_id": str(tx.id), "amount": bonus}
    await publish(
        session,
        tenant.id,
        "points.birthday",
        {"card_id": str(card.id), "guest_id": str(card.user_id), "points": bonus},
    )
    return True


async def expiry_reminders(db: Database, tenant: Tenant, now: datetime) -> int:
    """One `points.expiring` event per lot, N days (the programme's setting) ahead."""
    sent = 0
    async with db.transaction(tenant.id) as session:
        rows = list(
            await session.execute(
                select(PointLot, GuestCard.user_id)
                .join(GuestCard, GuestCard.id == PointLot.card_id)
                .join(LoyaltySystem, LoyaltySystem.id == GuestCard.loyalty_system_id)
                .where(
                    PointLot.remaining > 0,
                    PointLot.activated.is_(True),
                    PointLot.expires_at > now,
                    LoyaltySystem.expiry_reminder_days > 0,
                    PointLot.expires_at
                    <= func.make_interval(
                        0, 0, 0, cast(LoyaltySystem.expiry_reminder_days, Integer)
                    )
                    + now,
                )
            )
        )
        for lot, guest_id in rows:
            fresh = await session.scalar(
                insert(LedgerOperation)
                .values(
                    id=uuid7(),
                    tenant_id=tenant.id,
                    kind="REMINDER",
                    card_id=lot.card_id,
                    business_key=f"reminder:{lot.id}",
                    request_hash="",
                    response={},
                )
                .on_conflict_do_nothing()
                .returning(LedgerOperation.id)
            )
            if fresh is None:
                continue  # reminded already
            await publish(
                session,
                tenant.id,
                "points.expiring",
                {
                    "card_id": str(lot.card_id),
                    "guest_id": str(guest_id),
                    "points": lot.remaining,
                    "expires_at": rfc3339(lot.expires_at),
                },
            )
            sent += 1
    return sent


ROLLING_HOUR = 3  # local time of the daily look at rolling-window levels


async def rolling_levels(db: Database, tenant: Tenant, now: datetime) -> int:
    """Once a day (the run in the local 03:00 hour), cards on a rolling-window programme
    move to the level their recent spend earns: this is how they go down."""
    if now.astimezone(ZoneInfo(tenant.timezone)).hour != ROLLING_HOUR:
        return 0
    async with db.transaction(tenant.id) as session:
        programs = list(
            await session.scalars(
                select(LoyaltySystem.id).where(LoyaltySystem.level_metric == LevelMetric.ROLLING)
            )
        )
    for program_id in programs:
        await reevaluate_program(db, tenant.id, program_id, TierChangeReason.ROLLING_WINDOW, now)
    return len(programs)


async def run_daily(db: Database, now: datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    totals = {"activated": 0, "expired": 0, "birthdays": 0, "reminders": 0, "rolling": 0}
    failed: list[str] = []
    for tenant in await _tenants(db):
        try:  # one network's trouble must not hold up the others
            activated, expired = await activate_and_expire(db, tenant.id, now)
            totals["activated"] += activated
            totals["expired"] += expired
            totals["birthdays"] += await birthday_bonuses(db, tenant, now)
            totals["reminders"] += await expiry_reminders(db, tenant, now)
            totals["rolling"] += await rolling_levels(db, tenant, now)
        except Exception:
            log.exception("daily_ledger_failed", tenant=str(tenant.id))
            failed.append(str(tenant.id))
    if failed:  # the job is retried; what succeeded is not done twice
        raise RuntimeError(f"daily ledger work failed for tenants {', '.join(failed)}")
    return totals
