"""The generic POS API, as a till talks to it: identify, calculate, hold → commit or
cancel or expiry, refund."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from maxloyalty.identity.principal import Role
from maxloyalty.integrations.pos import checks
from maxloyalty.integrations.pos.models import PosTransaction
from maxloyalty.kit.clock import utcnow
from maxloyalty.ledger.models import HoldStatus, PointHold
from maxloyalty.ledger.service import operations
from maxloyalty.ledger.service.holds import expire_due
from maxloyalty.ledger.service.idempotency import request_hash
from maxloyalty.ledger.service.operations import CashierRequest
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.integrations.pos.conftest import Till, TillFactory
from tests.signing import ml_signature

LINES = [
    {"code": "101", "name": "Борщ", "category": "Супы", "price": 45000, "quantity": "2"},
    {"code": "202", "name": "Чай", "category": "Напитки", "price": 10000, "quantity": "1"},
]  # 1000 rubles


async def _ready(make_till: TillFactory, points: int = 500) -> Till:
    till = await make_till()
    if points:
        await till.credit(points)
    return till


async def _identify(till: Till) -> dict[str, Any]:
    answer = await till.call("/identify", {"code": till.shop.card.code, "check_amount": 100000})
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


async def test_identify_by_code_and_by_card_number(make_till: TillFactory) -> None:
    till = await _ready(make_till)
    data = await _identify(till)
    assert data["card_id"] == str(till.shop.card.id)
    assert (data["balance"], data["available"], data["max_redeemable"]) == (500, 500, 500)
    assert data["level"]["name"] == "BRONZE"
    by_number = await till.call("/identify", {"card_number": till.shop.card.code.lstrip("0")})
    assert by_number.json()["card_id"] == str(till.shop.card.id)
    two = await till.call("/identify", {"code": till.shop.card.code, "phone": "+79250000000"})
    assert two.status_code == 422


async def test_a_till_identifies_by_the_guest_apps_rotating_code(
    make_till: TillFactory, auth: TokenFactory, in_a_window: datetime
) -> None:
    till = await make_till(program_settings={"require_rotating_code": True})
    shop = till.shop
    guest = await auth(Role.GUEST, shop.tenant.id, subject=shop.guest_id)
    answer = await shop.client.get(f"/api/cards/{shop.card.id}/rotating-code", headers=guest)
    rotating = answer.json()
    for by in (
        {"code": rotating["code"]},
        {"card_number": rotating["code"].lstrip("0")},  # a till reading it as a number
        {"qr": rotating["qr"]},
    ):
        found = await till.call("/identify", by)
        assert found.status_code == 200, found.text
        assert found.json()["card_id"] == str(shop.card.id)
    for by in ({"code": shop.card.code}, {"card_number": shop.card.code}):
        refused = await till.call("/identify", by)
        assert refused.status_code == 422
        assert refused.json()["code"] == "rotating_code_required"
    with time_machine.travel(in_a_window + timedelta(seconds=60), tick=False):
        gone = await till.call("/identify", {"code": rotating["code"]})
        assert (gone.status_code, gone.json()["code"]) == (404, "card_not_found")


async def test_calculate_quotes_without_writing(
    make_till: TillFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    till = await _ready(make_till)
    body = {"card_id": str(till.shop.card.id), "lines": LINES, "points": 200}
    answer = await till.call("/calculate", body)
    assert answer.status_code == 200, answer.text
    quote = answer.json()
    assert quote["check_amount"] == 100000
    assert quote["max_redeemable"] == 500  # half the check, within the balance
    assert quote["points_to_spend"] == 200
    assert quote["paid_amount"] == 80000
    assert quote["accrual"] == 40  # BRONZE 5 % of 800 rubles
    assert quote["effects"] == []

    async def ten_percent_off_soup(_session: object, q: checks.Quote) -> list[checks.Effect]:
        soup = sum(line.total for line in q.lines if line.category == "Супы")
        return [checks.Effect("campaign:soup", "Soup −10 %", discount=soup // 10)]

    monkeypatch.setattr(checks, "EFFECT_SOURCES", [ten_percent_off_soup])
    quote = (await till.call("/calculate", body)).json()
    assert quote["discount"] == 9000
    assert quote["paid_amount"] == 100000 - 9000 - 20000
    assert quote["effects"][0]["source"] == "campaign:soup"
    assert (await _identify(till))["balance"] == 500


async def test_hold_then_commit_spends_the_held_points_once(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _ready(make_till)
    card = str(till.shop.card.id)
    held = await till.call(
        "/orders/A-1/hold", {"card_id": card, "points": 300, "check_amount": 100000}, key="h1"
    )
    assert held.status_code == 201, held.text
    assert (held.json()["status"], held.json()["available"]) == ("ACTIVE", 200)
    # The held points are not free for anything else, a cashier's manual debit included.
    spend = await till.shop.post(
        {"type": "MANUAL", "points": -300, "reason": "try to take held points"}
    )
    assert spend.status_code == 409, spend.text
    assert spend.json()["code"] == "insufficient_points"
    assert (await _identify(till))["available"] == 200

    commit = {"amount": 100000, "lines": LINES, "payments": [{"type": "cash", "amount": 70000}]}
    first = await till.call("/orders/A-1/commit", commit, key="c1")
    assert first.status_code == 201, first.text
    posted = first.json()
    assert (posted["redeemed"], posted["accrued"], posted["balance"]) == (300, 35, 235)
    # The till timed out and sends again, even with a new key: the first answer, nothing twice.
    again = await till.call("/orders/A-1/commit", commit, key="c2")
    assert again.status_code == 201
    assert again.json()["operation_id"] == posted["operation_id"]
    data = await _identify(till)
    assert (data["balance"], data["available"]) == (235, 235)
    async with runtime.db.session(till.shop.tenant.id) as session:
        hold = await session.scalar(select(PointHold).where(PointHold.order_id == "A-1"))
        records = list(await session.scalars(select(PosTransaction)))
    assert hold is not None
    assert hold.status is HoldStatus.COMMITTED
    assert len(records) == 1
    assert records[0].items[0]["name"] == "Борщ"
    assert (records[0].points_redeemed, records[0].points_accrued) == (300, 35)
    changed = await till.call("/orders/A-1/commit", commit | {"amount": 90000}, key="c3")
    assert changed.status_code == 409
    assert changed.json()["code"] == "check_already_posted"


async def test_a_hold_expires_and_frees_its_points(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _ready(make_till)
    body = {"card_id": str(till.shop.card.id), "points": 400, "check_amount": 100000}
    held = await till.call("/orders/B-7/hold", body | {"ttl_seconds": 1}, key="h")
    assert held.status_code == 201, held.text
    assert (await _identify(till))["available"] == 100
    await asyncio.sleep(1.2)
    # Free again the moment the hold ran out, before any sweeper has run.
    assert (await _identify(till))["available"] == 500
    assert await expire_due(runtime.db, utcnow()) == 1
    cancelled = await till.call("/orders/B-7/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "EXPIRED"
    # A commit after the hold ran out still spends the points, if they are free.
    commit = await till.call("/orders/B-7/commit", {"amount": 100000}, key="c")
    assert commit.status_code == 201, commit.text
    assert commit.json()["redeemed"] == 400


async def test_a_new_hold_replaces_the_orders_hold_and_cancel_releases_it(
    make_till: TillFactory,
) -> None:
    till = await _ready(make_till)
    card = str(till.shop.card.id)
    first = await till.call(
        "/orders/C/hold", {"card_id": card, "points": 100, "check_amount": 100000}, key="1"
    )
    second = await till.call(
        "/orders/C/hold", {"card_id": card, "points": 250, "check_amount": 100000}, key="2"
    )
    assert second.json()["available"] == 250
    assert first.json()["hold_id"] != second.json()["hold_id"]
    replay = await till.call(
        "/orders/C/hold", {"card_id": card, "points": 100, "check_amount": 100000}, key="1"
    )
    assert replay.json() == first.json()  # the original answer, nothing held again
    assert (await _identify(till))["available"] == 250
    cancelled = await till.call("/orders/C/cancel")
    assert cancelled.json()["status"] == "CANCELLED"
    assert (await till.call("/orders/C/cancel")).json()["status"] == "CANCELLED"
    assert (await _identify(till))["available"] == 500
    missing = await till.call("/orders/nothing-here/cancel")
    assert (missing.status_code, missing.json()["code"]) == (404, "hold_not_found")
    too_many = await till.call(
        "/orders/D/hold", {"card_id": card, "points": 501, "check_amount": 500000}, key="3"
    )
    assert too_many.json()["code"] == "insufficient_points"
    over_limit = await till.call(
        "/orders/D/hold", {"card_id": card, "points": 400, "check_amount": 10000}, key="4"
    )
    assert over_limit.json()["code"] == "redemption_limit_exceeded"


async def test_parallel_holds_never_reserve_more_than_the_balance(make_till: TillFactory) -> None:
    till = await _ready(make_till, points=1000)
    card = str(till.shop.card.id)

    async def hold(n: int) -> int:
        answer = await till.call(
            f"/orders/P{n}/hold",
            {"card_id": card, "points": 300, "check_amount": 1000000},
            key=f"p{n}",
        )
        return answer.status_code

    codes = await asyncio.gather(*(hold(n) for n in range(8)))
    assert sorted(codes) == [201, 201, 201, 409, 409, 409, 409, 409]
    assert (await _identify(till))["available"] == 100


async def test_posted_orders_are_not_held_again_and_tills_refund_only_their_checks(
    make_till: TillFactory,
) -> None:
    till = await _ready(make_till)
    card = str(till.shop.card.id)
    held = await till.call(
        "/orders/Q/hold", {"card_id": card, "points": 100, "check_amount": 100000}, key="h"
    )
    # Calculating for the order itself counts its own hold as its to spend.
    quote = await till.call(
        "/calculate", {"card_id": card, "lines": LINES, "order_id": "Q", "points": 100}
    )
    assert (quote.json()["available"], quote.json()["points_to_spend"]) == (500, 100)
    other = await till.call("/calculate", {"card_id": card, "lines": LINES})
    assert other.json()["available"] == 400
    assert (await till.call("/orders/Q/commit", {"amount": 100000}, key="c")).status_code == 201
    again = await till.call(
        "/orders/Q/hold", {"card_id": card, "points": 50, "check_amount": 100000}, key="h2"
    )
    assert (again.status_code, again.json()["code"]) == (409, "order_already_posted")
    replay = await till.call("/orders/Q/commit", {"amount": 100000}, key="c")
    assert replay.status_code == 201
    assert (await _identify(till))["available"] == 500 - 100 + 45
    # A cashier's check with a number like the order's is not this till's to refund.
    cashier = await till.shop.post({"type": "SALE", "amount": 10000, "check_number": "K"})
    assert cashier.status_code == 201
    foreign = await till.call("/orders/K/refund", {}, key="r")
    assert (foreign.status_code, foreign.json()["code"]) == (404, "check_not_found")
    assert held.status_code == 201


async def test_a_commit_spending_no_points_releases_the_orders_hold(make_till: TillFactory) -> None:
    till = await _ready(make_till)
    card = str(till.shop.card.id)
    await till.call(
        "/orders/Z/hold", {"card_id": card, "points": 300, "check_amount": 100000}, key="h"
    )
    assert (await _identify(till))["available"] == 200
    commit = await till.call(
        "/orders/Z/commit", {"card_id": card, "amount": 100000, "points": 0}, key="c"
    )
    assert commit.json()["redeemed"] == 0
    assert (await _identify(till))["available"] == commit.json()["balance"]


async def test_refund_by_order_partial_then_rest(make_till: TillFactory) -> None:
    till = await _ready(make_till, points=0)
    commit = await till.call(
        "/orders/R-1/commit", {"card_id": str(till.shop.card.id), "amount": 200000}, key="c"
    )
    assert commit.json()["accrued"] == 100
    part = await till.call("/orders/R-1/refund", {"amount": 50000}, key="r1")
    assert part.status_code == 201, part.text
    assert (part.json()["reversed_points"], part.json()["balance"]) == (25, 75)
    rest = await till.call("/orders/R-1/refund", {}, key="r2")
    assert (rest.json()["refunded_amount"], rest.json()["balance"]) == (150000, 0)
    # "The rest" is refunded once: sent again with another key, it is the first answer.
    again = await till.call("/orders/R-1/refund", {}, key="r3")
    assert (again.status_code, again.json()) == (201, rest.json())
    more = await till.call("/orders/R-1/refund", {"amount": 100}, key="r5")
    assert more.json()["code"] == "refund_exceeds_check"
    unknown = await till.call("/orders/R-404/refund", {}, key="r4")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "check_not_found")


async def test_only_a_live_integration_key_may_call(make_till: TillFactory) -> None:
    till = await _ready(make_till)
    body = {"code": till.shop.card.code}
    as_cashier = await till.client.post(
        "/api/pos/v1/identify", json=body, headers=till.shop.cashier
    )
    assert as_cashier.status_code == 403
    no_key = await till.call(
        "/orders/X/hold", {"card_id": str(uuid.uuid4()), "points": 1, "check_amount": 100}
    )
    assert no_key.json()["code"] == "idempotency_key_required"
    switched_off = await till.client.patch(
        f"/api/pos/integrations/{till.integration['id']}",
        json={"is_active": False},
        headers=till.admin,
    )
    assert switched_off.status_code == 200
    refused = await till.call("/identify", body)
    assert (refused.status_code, refused.json()["code"]) == (401, "api_key_suspended")
    # The key is paused everywhere, not only on the POS routes.
    core = await till.client.get(f"/api/guest/{till.shop.guest_id}/balance", headers=till.headers)
    assert core.status_code == 401
    back_on = await till.client.patch(
        f"/api/pos/integrations/{till.integration['id']}",
        json={"is_active": True},
        headers=till.admin,
    )
    assert back_on.status_code == 200
    assert (await till.call("/identify", body)).status_code == 200
    nulled = await till.client.patch(
        f"/api/pos/integrations/{till.integration['id']}", json={"name": None}, headers=till.admin
    )
    assert nulled.status_code == 422


async def test_a_till_retrying_a_commit_in_parallel_posts_it_once(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _ready(make_till)
    card = str(till.shop.card.id)
    await till.call(
        "/orders/T/hold", {"card_id": card, "points": 200, "check_amount": 100000}, key="h"
    )
    commit = {"amount": 100000, "payments": [{"type": "cash", "amount": 80000}]}
    answers = await asyncio.gather(
        *(till.call("/orders/T/commit", commit, key=f"c{n % 3}") for n in range(24))
    )
    # Attempts on one order wait for each other: every one gets the first answer.
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["operation_id"] for a in answers}) == 1
    async with runtime.db.session(till.shop.tenant.id) as session:
        records = list(await session.scalars(select(PosTransaction)))
    assert len(records) == 1
    data = await _identify(till)
    assert (data["balance"], data["available"]) == (500 - 200 + 40, 500 - 200 + 40)


async def test_a_hold_racing_the_orders_commit_never_outlives_it(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _ready(make_till, points=1000)
    card = str(till.shop.card.id)
    for n in range(8):
        order = f"/orders/RACE-{n}"
        await till.call(
            f"{order}/hold", {"card_id": card, "points": 10, "check_amount": 100000}, key=f"a{n}"
        )
        commit, rehold = await asyncio.gather(
            till.call(f"{order}/commit", {"amount": 100000}, key=f"c{n}"),
            till.call(
                f"{order}/hold",
                {"card_id": card, "points": 20, "check_amount": 100000},
                key=f"b{n}",
            ),
        )
        assert commit.status_code == 201, commit.text
        # Either the new hold came first (and the commit spent it) or it was refused.
        assert rehold.status_code == 201 or rehold.json()["code"] == "order_already_posted"
        assert commit.json()["redeemed"] == (20 if rehold.status_code == 201 else 10)
    async with runtime.db.session(till.shop.tenant.id) as session:
        active = list(
            await session.scalars(select(PointHold).where(PointHold.status == HoldStatus.ACTIVE))
        )
    assert active == []
    data = await _identify(till)
    assert data["available"] == data["balance"]


async def test_a_commit_on_another_card_spends_nothing_the_hold_reserved(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _ready(make_till)
    other = await till.guest(runtime)
    await till.call(
        "/orders/M/hold",
        {"card_id": str(till.shop.card.id), "points": 300, "check_amount": 100000},
        key="h",
    )
    body = {"card_id": str(other.id), "amount": 100000}
    first = await till.call("/orders/M/commit", body, key="c1")
    assert first.status_code == 201, first.text
    assert (first.json()["card_id"], first.json()["redeemed"]) == (str(other.id), 0)
    # The hold ended with the check; the held card's points are free again.
    assert (await _identify(till))["available"] == 500
    resent = await till.call("/orders/M/commit", body, key="c2")
    assert (resent.status_code, resent.json()["operation_id"]) == (
        201,
        first.json()["operation_id"],
    )


async def test_a_partial_refund_with_its_receipt_id_is_posted_once(make_till: TillFactory) -> None:
    till = await _ready(make_till, points=0)
    card = str(till.shop.card.id)
    await till.call("/orders/RR/commit", {"card_id": card, "amount": 200000}, key="c")
    body = {"amount": 40000, "refund_id": "RET-1"}
    first = await till.call("/orders/RR/refund", body, key="r1")
    assert (first.status_code, first.json()["reversed_points"]) == (201, 20)
    resent = await till.call("/orders/RR/refund", body, key="r2")
    assert resent.json() == first.json()
    changed = await till.call("/orders/RR/refund", body | {"amount": 50000}, key="r3")
    assert (changed.status_code, changed.json()["code"]) == (409, "check_already_posted")
    second = await till.call("/orders/RR/refund", body | {"refund_id": "RET-2"}, key="r4")
    assert second.json()["refunded_amount"] == 40000
    assert second.json()["balance"] == 100 - 20 - 20


async def test_a_signed_till_cannot_have_its_requests_replayed_under_new_keys(
    make_till: TillFactory,
) -> None:
    till = await make_till(require_signature=True)
    await till.credit(500)
    secret = till.integration["signing_secret"]
    path = "/api/pos/v1/orders/S/hold"
    body = json.dumps(
        {"card_id": str(till.shop.card.id), "points": 100, "check_amount": 100000}
    ).encode()

    def signed(key: str, timestamp: int, signed_key: str | None = None) -> dict[str, str]:
        signature = ml_signature(secret, timestamp, "POST", path, body, signed_key or key)
        return till.headers | {
            "content-type": "application/json",
            "Idempotency-Key": key,
            "X-ML-Timestamp": str(timestamp),
            "X-ML-Signature": signature,
        }

    now = int(time.time())
    first = await till.client.post(path, content=body, headers=signed("k1", now))
    assert first.status_code == 201, first.text
    # The same bytes again (a till's retry) replay; under another key they are refused.
    again = await till.client.post(path, content=body, headers=signed("k1", now))
    assert again.json() == first.json()
    replayed = await till.client.post(path, content=body, headers=signed("k2", now, "k1"))
    assert (replayed.status_code, replayed.json()["code"]) == (401, "invalid_signature")
    stale = await till.client.post(path, content=body, headers=signed("k3", now - 600))
    assert (stale.status_code, stale.json()["code"]) == (401, "invalid_signature")


async def test_refund_keys_never_mix_checks_and_receipts(make_till: TillFactory) -> None:
    till = await _ready(make_till, points=0)
    card = str(till.shop.card.id)
    for order in ("1", "1:2"):
        posted = await till.call(
            f"/orders/{order}/commit", {"card_id": card, "amount": 100000}, key=order
        )
        assert posted.status_code == 201, posted.text
    # Check "1:2" with receipt "3" and check "1" with receipt "2:3" are two refunds.
    one = await till.call("/orders/1:2/refund", {"amount": 10000, "refund_id": "3"}, key="a")
    two = await till.call("/orders/1/refund", {"amount": 10000, "refund_id": "2:3"}, key="b")
    assert (one.status_code, two.status_code) == (201, 201), two.text
    assert one.json()["operation_id"] != two.json()["operation_id"]
    # A receipt called "rest" is not the rest of the check.
    named = await till.call("/orders/1/refund", {"amount": 10000, "refund_id": "rest"}, key="c")
    rest = await till.call("/orders/1/refund", {}, key="d")
    assert (named.status_code, rest.status_code) == (201, 201), rest.text
    assert rest.json()["refunded_amount"] == 100000 - 2 * 10000


def test_fingerprints_of_requests_without_a_refund_id_are_as_before() -> None:
    """Operations stored before `refund_id` existed keep matching their retries."""
    restaurant = uuid.UUID(int=1)
    request = CashierRequest(type="SALE", restaurant_id=restaurant, amount=100, check_number="A")
    before = {
        "type": "SALE",
        "restaurant_id": str(restaurant),
        "amount": 100,
        "points": None,
        "check_number": "A",
        "reason": None,
    }
    assert request_hash("g", operations._fingerprinted(request)) == request_hash("g", before)
