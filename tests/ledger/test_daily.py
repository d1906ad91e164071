"""Daily ledger work at time-zone boundaries: expiry, birthdays, reminders, activation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from maxloyalty.guests.models import GuestCard, GuestProfile
from maxloyalty.kit.events import IntegrationEvent
from maxloyalty.ledger.models import PointLot, PointTransaction, TxType
from maxloyalty.ledger.service import core
from maxloyalty.ledger.service.daily import run_daily
from maxloyalty.runtime import Runtime
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
