"""The tills' ledger rows name their integration's kind (`channel`): the generic POS API's
POS_API, R-Keeper's RKEEPER, iiko's IIKO; a refund is the channel of who makes it."""

from __future__ import annotations

from maxloyalty.runtime import Runtime
from tests.integrations.pos.conftest import TillFactory
from tests.integrations.pos.iiko.test_webhook import (
    API_LOGIN,
    ORGANIZATION,
    card,
    drain,
    order_id,
    table_event,
)
from tests.integrations.pos.rkeeper.test_farcards import check_xml, number_of, post, rkeeper
from tests.ledger.test_channels import channels


async def test_a_generic_api_sale_and_the_tills_refund_are_pos_api(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await make_till()
    shop = till.shop
    commit = {"card_id": str(shop.card.id), "amount": 200000}
    assert (await till.call("/orders/A-1/commit", commit, key="c")).status_code == 201
    part = await till.call("/orders/A-1/refund", {"amount": 50000}, key="r")
    assert part.status_code == 201, part.text
    # The cashier refunds the rest of the till's check: that reversal is theirs.
    rest = await shop.post({"type": "REFUND", "check_number": "A-1"})
    assert rest.status_code == 201, rest.text
    assert await channels(runtime, shop) == [
        ("ACCRUAL", 100, "POS_API"),
        ("REVERSAL", -25, "POS_API"),
        ("REVERSAL", -75, "STAFF"),
    ]


async def test_rkeeper_sales_and_cancellations_are_rkeeper(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)  # the manager credits 500 points
    number = number_of(till.shop.card)
    assert (await post(till, check_xml((number, 3, 200000), (number, 0, -20000))))["Result"] == "0"
    assert (await post(till, check_xml((number, 3, -100000), (number, 0, 10000))))["Result"] == "0"
    assert await channels(runtime, till.shop) == [
        ("MANUAL", 500, "STAFF"),
        ("REDEMPTION", -200, "RKEEPER"),
        ("ACCRUAL", 100, "RKEEPER"),
        ("REVERSAL", 100, "RKEEPER"),
        ("REVERSAL", -50, "RKEEPER"),
    ]


async def test_iikos_webhook_and_its_front_plugin_are_iiko(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await make_till("IIKO", external_id=ORGANIZATION, credentials={"api_login": API_LOGIN})
    closed = table_event(order_id(), phone=None, external=card(till), total=1000)
    answer = await till.client.post(
        "/api/pos/iiko/webhook",
        json=[closed],
        headers={"Authorization": till.integration["webhook_token"]},
    )
    assert answer.status_code == 200, answer.text
    await drain(runtime)
    # The iikoFront plugin posts through the generic POS API with the same integration's key.
    commit = {"card_id": str(till.shop.card.id), "amount": 40000}
    assert (await till.call(f"/orders/{order_id()}/commit", commit, key="c")).status_code == 201
    assert await channels(runtime, till.shop) == [
        ("ACCRUAL", 50, "IIKO"),
        ("ACCRUAL", 20, "IIKO"),
    ]
