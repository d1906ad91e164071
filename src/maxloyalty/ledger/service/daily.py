"""Periodic ledger work (run by `tasks`), hourly, for every tenant in its own time zone:
- activate pending lots whose time has come;
- expire lots past their end of day (EXPIRATION rows);
- birthday bonuses, once a year per card, from the guest's local midnight;
- reminders (outbox events) before points expire.
Every step is safe to run twice: expiry and activation look at lot state under the card
lock, birthdays and reminders are keyed in `ledger_operations`. Expiry and activation are
set-based, a batch of cards per transaction (`activate_and_expire`), so a million due lots
take seconds, not hours of one ORM round trip after another.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import ARRAY, Integer, Uuid, and_, bindparam, cast, extract, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.live import stage
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


# The next cards with work due, in id order (each arm has its index: ix_point_lots_pending,
# whose predicate is `activated IS false`, not `NOT activated`, and ix_point_lots_expiring).
_DUE_CARDS = text(
    """
    SELECT card_id FROM (
        SELECT card_id FROM point_lots
        WHERE activated IS false AND activates_at <= :now AND card_id > :after
        UNION
        SELECT card_id FROM point_lots
        WHERE remaining > 0 AND expires_at <= :now AND card_id > :after
    ) due ORDER BY card_id LIMIT :n
    """
)
# `core.activate_lot` for every due pending lot of the locked cards: the lot counts in the
# balance, its credit and the reversals booked while it was pending complete.
_ACTIVATE = text(
    """
    WITH lots AS (
        UPDATE point_lots SET activated = true
        WHERE card_id = ANY(:cards) AND activated IS false AND activates_at <= :now
        RETURNING card_id, transaction_id, remaining
    ), rows AS (
        UPDATE point_transactions t SET status = 'COMPLETED', status_changed_at = :now
        FROM lots
        WHERE (t.id = lots.transaction_id OR t.reverses_id = lots.transaction_id)
          AND t.status = 'PENDING'
    ), moved AS (
        SELECT card_id, sum(remaining) AS points, count(*) FILTER (WHERE remaining > 0) AS lots
        FROM lots GROUP BY card_id
    )
    UPDATE guest_cards c
    SET balance = c.balance + moved.points, pending_balance = c.pending_balance - moved.points,
        updated_at = now()
    FROM moved WHERE c.id = moved.card_id
    RETURNING c.id, c.tenant_id, c.user_id, c.balance, c.pending_balance, c.level_id,
              moved.lots
    """
)
# `core.expire_lot` for every expired lot of the locked cards: an EXPIRATION row of what is
# left (one operation per card), its allocation, the lot emptied, the balance lowered.
_EXPIRE = text(
    """
    WITH due AS MATERIALIZED (
        SELECT l.id, l.tenant_id, l.card_id, l.transaction_id, l.remaining,
               maxloyalty_uuid7() AS tx_id, maxloyalty_uuid7() AS allocation_id
        FROM point_lots l
        WHERE l.card_id = ANY(:cards) AND l.activated AND l.remaining > 0
          AND l.expires_at <= :now
    ), operations AS MATERIALIZED (
        SELECT card_id, maxloyalty_uuid7() AS operation_id FROM due GROUP BY card_id
    ), rows AS (
        INSERT INTO point_transactions (id, created_at, tenant_id, card_id, operation_id, type,
                                        status, amount, source, channel, reason, reverses_id)
        SELECT due.tx_id, :now, due.tenant_id, due.card_id, operations.operation_id,
               'EXPIRATION', 'COMPLETED', -due.remaining, 'SYSTEM', 'SYSTEM',
               'points expired', due.transaction_id
        FROM due JOIN operations USING (card_id)
    ), allocations AS (
        INSERT INTO lot_allocations (id, tenant_id, lot_id, transaction_id, amount, created_at)
        SELECT allocation_id, tenant_id, id, tx_id, remaining, :now FROM due
    ), lots AS (
        UPDATE point_lots l SET remaining = 0 FROM due WHERE l.id = due.id
    ), expired AS (
        SELECT card_id, sum(remaining) AS points, count(*) AS lots FROM due GROUP BY card_id
    )
    UPDATE guest_cards c SET balance = c.balance - expired.points, updated_at = now()
    FROM expired WHERE c.id = expired.card_id
    RETURNING c.id, c.tenant_id, c.user_id, c.balance, c.pending_balance, c.level_id,
              expired.lots
    """
)
_CARDS_PARAMS = (bindparam("cards", type_=ARRAY(Uuid())),)
CARDS_PER_PASS = 50_000  # due card ids read at once (one scan of the due lots each)
BATCH = 200  # cards per transaction: each card's lock lasts one batch
WORKERS = 2  # batches at a time (one connection each)


@dataclass
class _Pass:
    """One pass's batches (taken from the end: they are stored reversed) and the counts."""

    batches: list[list[uuid.UUID]]
    activated: int = 0
    expired: int = 0
    failed: bool = False


async def activate_and_expire(
    db: Database, tenant_id: uuid.UUID, now: datetime, batch: int = BATCH, workers: int = WORKERS
) -> tuple[int, int]:
    """(lots activated, lots expired). Set-based, `batch` cards per transaction, in card
    order, `workers` transactions at a time: the batch's cards are locked (skipping any a
    till holds now: its operation settles them itself, or the next run does), their due
    lots activated and expired, and the batch commits. Nothing is kept between batches but
    the last card id, so a run stopped half-way leaves whole batches done and the next run
    does the rest."""
    activated = expired = 0
    after = uuid.UUID(int=0)
    while True:
        async with db.transaction(tenant_id) as session:
            found = await session.scalars(
                _DUE_CARDS, {"now": now, "after": after, "n": CARDS_PER_PASS}
            )
            card_ids = list(found)
        run = _Pass([card_ids[i : i + batch] for i in range(0, len(card_ids), batch)][::-1])
        # Batches hold disjoint cards, so they never wait on each other. A failing one
        # stops the others after their current batch, and the run fails with it.
        outcomes = await asyncio.gather(
            *(_work(db, tenant_id, run, now) for _ in range(workers)), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        activated += run.activated
        expired += run.expired
        if len(card_ids) < CARDS_PER_PASS:
            return activated, expired
        after = card_ids[-1]


async def _work(db: Database, tenant_id: uuid.UUID, run: _Pass, now: datetime) -> None:
    while run.batches and not run.failed:
        try:
            activated, expired = await _settle_batch(db, tenant_id, run.batches.pop(), now)
        except BaseException:
            run.failed = True
            raise
        run.activated += activated
        run.expired += expired


async def _settle_batch(
    db: Database, tenant_id: uuid.UUID, card_ids: list[uuid.UUID], now: datetime
) -> tuple[int, int]:
    """One batch's transaction: `core.settle_due` for these cards, in three statements."""
    async with db.transaction(tenant_id) as session:
        locked = list(
            await session.scalars(
                select(GuestCard.id)
                .where(GuestCard.id.in_(card_ids))
                .order_by(GuestCard.id)
                .with_for_update(skip_locked=True)
            )
        )
        if len(locked) < len(card_ids):
            log.info("daily_cards_busy", skipped=len(card_ids) - len(locked))
        if not locked:
            return 0, 0
        params = {"cards": locked, "now": now}
        at = rfc3339(utcnow())
        counts = []
        for statement in (_ACTIVATE, _EXPIRE):
            changed = await session.execute(statement.bindparams(*_CARDS_PARAMS), params)
            lots = 0
            for card in changed.mappings():
                lots += card["lots"]
                stage(session.sync_session, card, at)  # the ORM's listener never sees these
            counts.append(lots)
    return counts[0], counts[1]


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
