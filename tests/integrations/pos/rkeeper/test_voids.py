"""R-Keeper's cancellations (the kinds of a posted check with opposite signs): the points
of the Kind 0 go back, the accrual's share of the Kind 3 is taken back, once each."""

from __future__ import annotations

import asyncio

from maxloyalty.ledger.models import TxStatus, TxType
from maxloyalty.runtime import Runtime
from tests.integrations.pos.conftest import TillFactory
from tests.integrations.pos.rkeeper.test_farcards import (
    card_now,
    check_xml,
    number_of,
    post,
    records,
    result,
    rkeeper,
    rows_of,
    send,
)


def _reversal(points: int) -> tuple[TxType, int, TxStatus]:
    return TxType.REVERSAL, points, TxStatus.COMPLETED


async def test_partial_cancellations_each_post_once(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    card, number = till.shop.card, number_of(till.shop.card)
    # 2000 rubles of spend accrue 100 points; 200 points paid.
    assert (await post(till, check_xml((number, 3, 200000), (number, 0, -20000))))["Result"] == "0"
    assert (await card_now(runtime, card)).balance == 500 - 200 + 100
    first = check_xml((number, 3, -100000), (number, 0, 10000))
    second = check_xml((number, 3, -60000), (number, 0, 6000))
    for void, balance in [(first, 400 + 100 - 50), (second, 450 + 60 - 30)]:
        assert (await post(till, void))["Result"] == "0"
        assert (await card_now(runtime, card)).balance == balance
    for void in (first, second, first):  # re-sent, in any order: nothing more
        assert (await post(till, void))["Result"] == "0"
    assert (await card_now(runtime, card)).balance == 480
    # What is left of the check, and the whole balance is as before it.
    assert (await post(till, check_xml((number, 3, -40000), (number, 0, 4000))))["Result"] == "0"
    after = await card_now(runtime, card)
    assert (after.balance, after.lifetime_spent) == (500, 0)
    sale, *voids = await records(runtime, till)
    assert [(r.operation, r.check_amount, r.order_id) for r in voids] == [
        ("REFUND", 110000, sale.order_id),
        ("REFUND", 66000, sale.order_id),
        ("REFUND", 44000, sale.order_id),
    ]
    assert [await rows_of(runtime, till, r.ledger_operation_id) for r in voids] == [
        [_reversal(-50), _reversal(100)],
        [_reversal(-30), _reversal(60)],
        [_reversal(-20), _reversal(40)],
    ]
    beyond = await post(till, check_xml((number, 3, -1000)))
    assert beyond["Result"] == "1"
    assert "more than is left" in beyond["ErrorText"]
    unknown = await post(till, check_xml((number, 3, -1000), check=1))
    assert unknown["Result"] == "1"
    assert "No check 46347-3-1/" in unknown["ErrorText"]


async def test_a_cancellation_books_its_own_figures_exactly(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    card, number = till.shop.card, number_of(till.shop.card)
    assert (await post(till, check_xml((number, 3, 100000), (number, 0, -10000))))["Result"] == "0"
    # Not quite in proportion (a third of the spend, 33 of the 100 points): still exact.
    assert (await post(till, check_xml((number, 3, -33333), (number, 0, 3300))))["Result"] == "0"
    after = await card_now(runtime, card)
    assert (after.lifetime_spent, after.balance) == (100000 - 33333, 500 - 100 + 50 + 33 - 16)
    void = (await records(runtime, till))[-1]
    assert await rows_of(runtime, till, void.ledger_operation_id) == [
        _reversal(-16),  # 50 points × 33333 / 100000
        _reversal(33),
    ]


async def test_a_cancellation_out_of_proportion_is_refused(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    card, number = till.shop.card, number_of(till.shop.card)
    assert (await post(till, check_xml((number, 3, 200000), (number, 0, -20000))))["Result"] == "0"
    # Half the spend, but all 200 points back: the ledger returns points pro rata only.
    refused = await post(till, check_xml((number, 3, -100000), (number, 0, 20000)))
    assert refused["Result"] == "1"
    assert "out of proportion" in refused["ErrorText"]
    assert (await card_now(runtime, card)).balance == 400
    kept = await records(runtime, till)
    assert [r.status.value for r in kept] == ["PROCESSED", "FAILED"]
    # The whole check still cancels exactly.
    assert (await post(till, check_xml((number, 3, -200000), (number, 0, 20000))))["Result"] == "0"
    assert (await card_now(runtime, card)).balance == 500


async def test_a_cancellation_resent_in_parallel_is_posted_once(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    card, number = till.shop.card, number_of(till.shop.card)
    assert (await post(till, check_xml((number, 3, 100000), (number, 0, -10000))))["Result"] == "0"
    void = check_xml((number, 3, -50000), (number, 0, 5000))
    answers = await asyncio.gather(*(send(till, "TransactionsEx", void) for _ in range(16)))
    assert all(result(a, "TransactionsEx")["Result"] == "0" for a in answers)
    assert (await card_now(runtime, card)).balance == 450 + 50 - 25
    assert [r.operation for r in await records(runtime, till)] == ["REDEMPTION", "REFUND"]


async def test_cancellations_sent_together_take_turns(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    card, number = till.shop.card, number_of(till.shop.card)
    assert (await post(till, check_xml((number, 3, 100000), (number, 0, -10000))))["Result"] == "0"
    # Each is reckoned on what the other left: a third of the check, then another third.
    thirds = [
        check_xml((number, 3, -33333), (number, 0, 3300)),
        check_xml((number, 3, -33334), (number, 0, 3300)),
    ]
    answers = await asyncio.gather(*(send(till, "TransactionsEx", v) for v in thirds))
    assert [result(a, "TransactionsEx")["Result"] for a in answers] == ["0", "0"]
    after = await card_now(runtime, card)
    assert (after.lifetime_spent, after.balance) == (100000 - 66667, 500 - 100 + 50 + 66 - 33)
