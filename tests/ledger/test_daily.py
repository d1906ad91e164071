"""Daily ledger work at time-zone boundaries: expiry, birthdays, reminders, activation."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql

from maxloyalty.guests.models import GuestCard, GuestProfile
from maxloyalty.guests.service.cards import lock_card
from maxloyalty.kit.events import IntegrationEvent
from maxloyalty.ledger.models import LotAllocation, PointLot, PointTransaction, TxChannel, TxType
from maxloyalty.ledger.service import core, daily
from maxloyalty.ledger.service.daily import run_daily
from maxloyalty.runtime import Runtime
from tests.factories import make_guest
from tests.ledger.conftest import Shop, assert_ledger_consistent, post_at

ZONE_OFFSET = timedelta(hours=5)  # Asia/Yekaterinburg, the test network's zone


async def test_points_expire_at_local_end_of_day(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop(expiry_days=30)
    # 20:30 UTC is already the next day (01:30) in Yekaterinburg.
    earned = datetime(2026, 11, 10, 20, 30, tzinfo=UTC)
    await post_at(runtime, shop, earned, {"type": "SALE", "amount": 100_000})  # +50
    local_day = (earned + ZONE_OFFSET).date()  # 11 November
    expiry = datetime.combine(local_day + timedelta(days=30), datetime.min.time(), UTC)
    expiry = expiry + timedelta(days=1) - ZONE_OFFSET  # local midnight after day 30, in UTC
    async with runtime.db.transaction(shop.tenant.id) as session:
        lot = await session.scalar(select(PointLot))
    assert lot is not None
    assert lot.expires_at == expiry - timedelta(microseconds=1)

    await run_daily(runtime.db, expiry - timedelta(seconds=1))
    assert (await shop.balance())["balance"] == 50
    first = await run_daily(runtime.db, expiry + timedelta(minutes=5))
    second = await run_daily(runtime.db, expiry + timedelta(minutes=65))
    assert (first["expired"], second["expired"]) == (1, 0)
    assert (await shop.balance())["balance"] == 0
    async with runtime.db.transaction(shop.tenant.id) as session:
        expirations = list(
            await session.scalars(
                select(PointTransaction.amount).where(PointTransaction.type == TxType.EXPIRATION)
            )
        )
    assert expirations == [-50]
    await assert_ledger_consistent(runtime, shop)


async def test_partly_spent_lot_expires_only_its_rest(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop(expiry_days=10)
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    await post_at(runtime, shop, start, {"type": "SALE", "amount": 200_000})  # +100
    await post_at(
        runtime,
        shop,
        start + timedelta(days=1),
        {"type": "REDEMPTION", "amount": 100_000, "points": 30},
    )  # -30, +35
    await run_daily(runtime.db, start + timedelta(days=12))
    balance = await shop.balance()
    # The first lot expires with 70 left; the 35 earned a day later too (day 12 > 11).
    assert balance["balance"] == 0
    await assert_ledger_consistent(runtime, shop)


async def set_birthday(runtime: Runtime, shop: Shop, born: date) -> None:
    async with runtime.db.transaction(shop.tenant.id) as session:
        await session.execute(
            update(GuestProfile)
            .where(GuestProfile.user_id == shop.guest_id)
            .values(birth_date=born)
        )


async def test_birthday_bonus_from_local_midnight_once_a_year(
    make_shop: Any, runtime: Runtime
) -> None:
    shop: Shop = await make_shop()
    await set_birthday(runtime, shop, date(1990, 3, 15))
    eve = datetime(2027, 3, 14, 18, 30, tzinfo=UTC)  # 23:30 on 14 March locally
    assert (await run_daily(runtime.db, eve))["birthdays"] == 0
    midnight = datetime(2027, 3, 14, 19, 30, tzinfo=UTC)  # 00:30 on 15 March locally
    assert (await run_daily(runtime.db, midnight))["birthdays"] == 1
    assert (await run_daily(runtime.db, midnight + timedelta(hours=5)))["birthdays"] == 0
    assert (await shop.balance())["balance"] == 100  # BRONZE's birthday bonus
    async with runtime.db.transaction(shop.tenant.id) as session:
        events = list(
            await session.scalars(
                select(IntegrationEvent.event_type).where(
                    IntegrationEvent.event_type == "points.birthday"
                )
            )
        )
    assert events == ["points.birthday"]
    await assert_ledger_consistent(runtime, shop)


async def test_leap_day_birthday_on_28_february(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    await set_birthday(runtime, shop, date(2000, 2, 29))
    assert (await run_daily(runtime.db, datetime(2027, 2, 28, 12, tzinfo=UTC)))["birthdays"] == 1


async def test_expiry_reminder_once(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop(expiry_days=10, expiry_reminder_days=3)
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    await post_at(runtime, shop, start, {"type": "SALE", "amount": 100_000})
    assert (await run_daily(runtime.db, start + timedelta(days=5)))["reminders"] == 0
    assert (await run_daily(runtime.db, start + timedelta(days=8)))["reminders"] == 1
    assert (await run_daily(runtime.db, start + timedelta(days=9)))["reminders"] == 0
    async with runtime.db.transaction(shop.tenant.id) as session:
        event = await session.scalar(
            select(IntegrationEvent).where(IntegrationEvent.event_type == "points.expiring")
        )
    assert event is not None
    assert event.payload["points"] == 50


async def test_pending_points_activate_later(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop(pending_days=14)
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    sale = await post_at(
        runtime, shop, start, {"type": "SALE", "amount": 100_000, "check_number": "P1"}
    )
    assert (sale["balance"], sale["pending_balance"]) == (0, 50)
    await assert_ledger_consistent(runtime, shop)
    # A partial refund while pending takes from the pending points.
    await post_at(
        runtime,
        shop,
        start + timedelta(days=1),
        {"type": "REFUND", "check_number": "P1", "amount": 20_000},
    )
    await assert_ledger_consistent(runtime, shop)
    assert (await run_daily(runtime.db, start + timedelta(days=13)))["activated"] == 0
    assert (await run_daily(runtime.db, start + timedelta(days=14, hours=1)))["activated"] == 1
    balance = await shop.balance()
    assert (balance["balance"], balance["pending_balance"]) == (40, 0)
    async with runtime.db.transaction(shop.tenant.id) as session:
        lot = await session.scalar(select(PointLot))
        card = await session.get(GuestCard, shop.card.id)
    assert lot is not None
    assert card is not None
    # Expiry counts from activation.
    assert lot.expires_at > start + timedelta(days=14 + 180)
    await assert_ledger_consistent(runtime, shop)


async def test_end_of_day_helper() -> None:
    moment = datetime(2026, 12, 31, 19, 5, tzinfo=UTC)  # 00:05 on 1 January in UTC+5
    end = core.end_of_day(moment, "Asia/Yekaterinburg")
    assert end == datetime(2027, 1, 1, 18, 59, 59, 999_999, tzinfo=UTC)
    moscow = core.end_of_day(moment, "Europe/Moscow")  # 22:05 on 31 December in UTC+3
    assert moscow == datetime(2026, 12, 31, 20, 59, 59, 999_999, tzinfo=UTC)


async def _cards_with_expiring_points_of(
    make_shop: Any, runtime: Runtime, count: int
) -> tuple[Shop, datetime]:
    """A shop whose `count` cards each earned 50 + 50 points that expire after 10 days;
    returns it with a moment after their expiry."""
    shop: Shop = await make_shop(expiry_days=10)
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    cards = [shop.card] + [
        await make_guest(runtime, shop.system, restaurant_id=shop.restaurant.id)
        for _ in range(count - 1)
    ]
    for card in cards:
        for hours in (0, 1):
            await post_at(
                runtime,
                replace(shop, card=card),
                start + timedelta(hours=hours),
                {"type": "SALE", "amount": 100_000},
            )
    return shop, start + timedelta(days=12)


async def balances(runtime: Runtime, shop: Shop) -> dict[uuid.UUID, int]:
    async with runtime.db.transaction(shop.tenant.id) as session:
        return dict((await session.execute(select(GuestCard.id, GuestCard.balance))).all())


@pytest.mark.parametrize("workers", [1, 2])
async def test_an_interrupted_expiry_run_keeps_whole_batches_and_the_next_run_does_the_rest(
    make_shop: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    shop, after_expiry = await _cards_with_expiring_points_of(make_shop, runtime, 5)
    first, *_, last = sorted(await balances(runtime, shop))
    real_stage = daily.stage

    def crash_on_the_last_card(session: Any, card: Any, at: str) -> None:
        if card["id"] == last:  # the third batch fails after its writes, before its commit
            raise RuntimeError("worker killed")
        real_stage(session, card, at)

    monkeypatch.setattr(daily, "stage", crash_on_the_last_card)
    with pytest.raises(RuntimeError, match="worker killed"):
        # Batches [1, 2], [3, 4], [5]: a second worker finishes its batch, then stops.
        await daily.activate_and_expire(
            runtime.db, shop.tenant.id, after_expiry, batch=2, workers=workers
        )
    left = await balances(runtime, shop)
    assert sorted(left.values()) == [0, 0, 0, 0, 100]  # two batches of two cards committed
    assert left[last] == 100  # the failed batch left no trace
    await assert_ledger_consistent(runtime, shop)

    monkeypatch.setattr(daily, "stage", real_stage)
    totals = await run_daily(runtime.db, after_expiry)
    assert totals["expired"] == 2  # the rest: the last card's two lots, nothing twice
    assert set((await balances(runtime, shop)).values()) == {0}
    async with runtime.db.transaction(shop.tenant.id) as session:
        rows = list(
            await session.scalars(
                select(PointTransaction).where(PointTransaction.type == TxType.EXPIRATION)
            )
        )
        credits = set(await session.scalars(select(PointLot.transaction_id)))
        drawn = await session.scalar(select(func.count()).select_from(LotAllocation))
    # As `core.expire_lot` books them: one row per lot, reversing its credit, one operation
    # per card.
    assert len(rows) == drawn == 10
    assert {(r.amount, r.channel, r.reason) for r in rows} == {
        (-50, TxChannel.SYSTEM, "points expired")
    }
    assert {r.reverses_id for r in rows} == credits
    assert len({(r.card_id, r.operation_id) for r in rows}) == len({r.card_id for r in rows}) == 5
    assert first in {r.card_id for r in rows}
    await assert_ledger_consistent(runtime, shop)


async def test_expiry_skips_a_card_an_operation_holds_and_the_next_run_books_it(
    make_shop: Any, runtime: Runtime
) -> None:
    shop, after_expiry = await _cards_with_expiring_points_of(make_shop, runtime, 3)
    async with runtime.db.transaction(shop.tenant.id) as till:
        await lock_card(till, shop.card.id)  # a till's operation on it, still open
        assert (await run_daily(runtime.db, after_expiry))["expired"] == 4
    assert (await balances(runtime, shop))[shop.card.id] == 100
    assert (await run_daily(runtime.db, after_expiry))["expired"] == 2
    assert set((await balances(runtime, shop)).values()) == {0}
    await assert_ledger_consistent(runtime, shop)


async def test_the_pending_lots_index_serves_the_predicate_the_orm_sends(runtime: Runtime) -> None:
    """Every operation settles its card first (`core.settle_due`: `activated.is_(False)`).
    The planner matches a partial index only to the predicate as written: were the index's
    `NOT activated`, that query would scan every lot of every network."""
    sent = str(PointLot.activated.is_(False).compile(dialect=postgresql.dialect()))
    async with runtime.db.transaction() as session:
        predicate = await session.scalar(
            text(
                "SELECT pg_get_expr(indpred, indrelid) FROM pg_index"
                " WHERE indexrelid = 'ix_point_lots_pending'::regclass"
            )
        )
    assert predicate is not None
    assert predicate.strip("()").lower() == sent.removeprefix("point_lots.").lower()
