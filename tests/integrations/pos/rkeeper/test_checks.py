"""R-Keeper's closed checks (TransactionsEx): what each card's part books, records or
refuses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from maxloyalty.ledger.models import PointTransaction, TxStatus, TxType
from maxloyalty.loyalty.service import LevelSpec
from maxloyalty.runtime import Runtime
from tests.integrations.pos.conftest import TillFactory
from tests.integrations.pos.rkeeper.test_farcards import (
    CHECK_XML,
    card_info,
    card_now,
    check_xml,
    number_of,
    post,
    records,
    rkeeper,
    rkeeper_of,
    rows_of,
)


async def _check_rows(runtime: Runtime, tenant_id: Any) -> list[PointTransaction]:
    async with runtime.db.session(tenant_id) as session:
        return list(
            await session.scalars(
                select(PointTransaction).where(PointTransaction.check_number.is_not(None))
            )
        )


async def test_a_check_with_one_bad_part_applies_nothing(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    other = await till.guest(runtime)
    good, second = number_of(till.shop.card), number_of(other)
    refusals = [
        (check_xml((good, 3, 100000), ("424242", 3, 100000)), "No card 424242"),
        (check_xml((good, 3, 100000), (second, 0, -10000)), "insufficient_points"),
        (check_xml((good, 3, 100000), (good, 0, -1050)), "whole rubles"),
        # Mixed signs, even when they add up to nothing, or hide within one kind.
        (check_xml((good, 3, 10000), (good, 0, 10000)), "mix"),
        (check_xml((good, 3, 100000), (good, 1, 5000)), "mix"),
        (check_xml((good, 3, 100000), (good, 2, -1000)), "mix"),
        (check_xml((good, 3, 100000), (good, 3, -100000)), "mix"),
        (check_xml((good, 3, 10**10), (good, 3, 1)), "out of bounds"),
        (check_xml((good, 3, 100000)).replace('Restaurant="12"', 'Restaurant="13"'), "13"),
    ]
    for check, why in refusals:
        refused = await post(till, check)
        assert refused["Result"] == "1", check
        assert why in refused["ErrorText"], refused
    assert await _check_rows(runtime, till.shop.tenant.id) == []
    # Each refused attempt is on the record for the admin, with why and what was sent.
    kept = await records(runtime, till)
    assert [r.status.value for r in kept] == ["FAILED"] * len(refusals)
    assert [r.raw for r in kept] == [check for check, _ in refusals]
    assert all(r.ledger_operation_id is None for r in kept)
    assert "424242" in (kept[0].error or "")
    assert (await card_now(runtime, till.shop.card)).total_visits == 0


async def test_a_refused_check_can_be_sent_again_corrected(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    number = number_of(till.shop.card)
    too_much = check_xml((number, 3, 100000), (number, 0, -60000))  # 600 of 500 points
    assert (await post(till, too_much))["Result"] == "1"
    corrected = check_xml((number, 3, 100000), (number, 0, -20000))
    assert (await post(till, corrected))["Result"] == "0"
    assert (await card_info(till, number))["Summa"] == str((500 - 200 + 50) * 100)
    # Once posted, a check with other amounts is not the same check re-sent.
    other = await post(till, check_xml((number, 3, 90000), (number, 0, -20000)))
    assert other["Result"] == "1"
    assert "already posted" in other["ErrorText"]
    failed, posted, conflict = await records(runtime, till)
    assert [r.status.value for r in (failed, posted, conflict)] == ["FAILED", "PROCESSED", "FAILED"]
    assert (posted.points_redeemed, posted.points_accrued) == (200, 50)


async def test_a_check_with_two_cards_posts_each_once(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    other = await till.guest(runtime)
    first, second = number_of(till.shop.card), number_of(other)
    check = check_xml((first, 3, 100000), (first, 0, -10000), (second, 3, 40000))
    for _ in range(2):
        assert (await post(till, check))["Result"] == "0"
    assert sorted(
        (r.card_id, r.points_accrued, r.points_redeemed) for r in await records(runtime, till)
    ) == sorted([(till.shop.card.id, 50, 100), (other.id, 20, 0)])
    assert (await post(till, check_xml((second, 3, -40000))))["Result"] == "0"
    assert (await card_info(till, second))["Summa"] == "0"


async def test_leading_zeros_name_the_same_card_part(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    number = number_of(till.shop.card)
    padded = number.zfill(9)
    assert (await post(till, check_xml((padded, 3, 100000), (number, 0, -10000))))["Result"] == "0"
    assert (await post(till, check_xml((number, 3, 100000), (padded, 0, -10000))))["Result"] == "0"
    [record] = await records(runtime, till)
    assert (record.order_id, record.points_redeemed) == (f"46347-3-58812/{number}", 100)
    assert (await card_now(runtime, till.shop.card)).total_visits == 1


async def test_discounts_and_rkeeper_bonuses_are_recorded_not_booked(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    other = await till.guest(runtime)
    number, bonus_only = number_of(till.shop.card), number_of(other)
    check = check_xml(
        (number, 3, 200000), (number, 1, -4000), (number, 2, 3000), (bonus_only, 2, 1500)
    )
    assert (await post(till, check))["Result"] == "0"
    # Re-sent with R-Keeper's bonus figured again: the same check, nothing new.
    assert (await post(till, check.replace('Summa="3000"', 'Summa="3500"')))["Result"] == "0"
    record, note = sorted(await records(runtime, till), key=lambda r: r.operation != "SALE")
    assert record.card_id == till.shop.card.id
    assert (record.check_amount, record.points_accrued, record.discount_applied) == (
        200000,
        100,  # ours: 5 % of the spend, whatever R-Keeper's bonus
        4000,
    )
    assert record.payments == [
        {"name": "Cash", "sum": "200000"},
        {"kind": "rkeeper_bonus", "sum": 3000},
    ]
    assert record.items == [{"code": "101", "name": "Borscht", "price": "45000", "quantity": "2"}]
    assert record.raw is not None
    assert CHECK_XML in record.raw  # CHECKCATEGS too, though nothing reads it yet
    assert await rows_of(runtime, till, record.ledger_operation_id) == [
        (TxType.ACCRUAL, 100, TxStatus.COMPLETED)
    ]
    untouched = await card_now(runtime, other)
    assert (untouched.balance, untouched.total_visits, untouched.lifetime_spent) == (0, 0, 0)
    # The bonus-only card is recorded alone, once for the check and its re-send.
    assert (note.operation, note.card_id, note.points_accrued) == ("NOTE", other.id, 0)
    assert note.payments[-1] == {"kind": "rkeeper_bonus", "sum": 1500}
    assert note.raw is not None
    assert CHECK_XML in note.raw
    assert await rows_of(runtime, till, note.ledger_operation_id) == []


async def test_a_discount_programme_books_what_the_guest_paid(
    make_till: TillFactory, runtime: Runtime
) -> None:
    levels = [LevelSpec("BRONZE", 0, Decimal(5)), LevelSpec("SILVER", 150000, Decimal(10))]
    till = await rkeeper_of(make_till, "DISCOUNT", levels=levels)
    card, number = till.shop.card, number_of(till.shop.card)
    # R-Keeper gave our 5 %: the ledger sees R-Keeper's own check.
    exact = check_xml((number, 3, 95000), (number, 1, -5000))
    assert (await post(till, exact))["Result"] == "0"
    # A discount of its own (8 %): the spend is still what the guest paid.
    own = check_xml((number, 3, 92000), (number, 1, -8000), check=58813)
    assert (await post(till, own))["Result"] == "0"
    assert (await card_now(runtime, card)).lifetime_spent == 95000 + 92000  # now SILVER
    # Re-sent after the level went up (10 % would make another check of it): still 0.
    assert (await post(till, own))["Result"] == "0"
    # A part with only a discount books nothing (no visit, no spend) but is recorded.
    assert (await post(till, check_xml((number, 1, -3000), check=58814)))["Result"] == "0"
    first, second, note = await records(runtime, till)
    assert (note.operation, note.discount_applied, note.check_amount) == ("NOTE", 3000, 0)
    assert [(r.check_amount, r.discount_applied) for r in (first, second)] == [
        (95000, 5000),
        (92000, 8000),
    ]
    rows = {r.check_number: r for r in await _check_rows(runtime, till.shop.tenant.id)}
    assert (rows[first.order_id].check_amount, rows[first.order_id].paid_amount) == (
        100000,
        95000,
    )
    assert rows[first.order_id].discount_amount == 5000
    assert rows[second.order_id].paid_amount == 92000
    after = await card_now(runtime, card)
    assert (after.total_visits, after.lifetime_spent, after.balance) == (2, 187000, 0)
    # Half of the second check voided: exactly that spend leaves the card.
    half = check_xml((number, 3, -46000), (number, 1, 4000), check=58813)
    assert (await post(till, half))["Result"] == "0"
    assert (await card_now(runtime, card)).lifetime_spent == 187000 - 46000


async def test_a_whole_discount_level_books_nothing_paid(
    make_till: TillFactory, runtime: Runtime
) -> None:
    levels = [LevelSpec("STAFF", 0, Decimal(100))]
    till = await rkeeper_of(make_till, "DISCOUNT", levels=levels)
    number = number_of(till.shop.card)
    # R-Keeper charged the guest although our level gives everything: no check the ledger
    # could see leaves that to pay, so it sees R-Keeper's.
    assert (await post(till, check_xml((number, 3, 1000), (number, 1, -9000))))["Result"] == "0"
    [row] = await _check_rows(runtime, till.shop.tenant.id)
    assert (row.check_amount, row.paid_amount) == (10000, 0)
