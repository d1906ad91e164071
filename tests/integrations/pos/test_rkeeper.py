"""R-Keeper 7 talking FarCards HTTP/XML to us, with documents shaped as in the reference."""

from __future__ import annotations

import asyncio

import httpx
from defusedxml.ElementTree import fromstring
from sqlalchemy import select

from maxloyalty.integrations.pos.models import PosTransaction
from maxloyalty.ledger.models import PointTransaction
from maxloyalty.runtime import Runtime
from tests.factories import make_guest
from tests.integrations.pos.conftest import Till, TillFactory

RESTAURANT = "12"


async def _rkeeper(make_till: TillFactory) -> Till:
    till = await make_till(
        "RKEEPER",
        external_id=RESTAURANT,
        settings={"levels": {"BRONZE": {"bonus": 2, "discount": 3}}},
    )
    await till.credit(500)
    return till


async def _send(till: Till, call: str, xml: str) -> httpx.Response:
    return await till.client.post(
        f"/api/pos/rkeeper/{call}",
        content=xml.encode(),
        headers=till.headers | {"Content-Type": "application/xml"},
    )


def _result(answer: httpx.Response, call: str) -> dict[str, str]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    node = fromstring(answer.content).find(call)
    assert node is not None, answer.text
    return dict(node.attrib)


def _card_info(card: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<ROOT><QRY Card="{card}" Restaurant="{RESTAURANT}" UnitNo="3"/></ROOT>'
    )


def _check(*transactions: tuple[str, int, int], check: int = 58812) -> str:
    rows = "".join(
        f'<TransactionsEx Card="{card}" PersonID="{card}" Account="{card}" Kind="{kind}" '
        f'Summa="{summa}" Restaurant="{RESTAURANT}" RKDate="46347" RKUni="3" RKCheck="{check}"/>'
        for card, kind, summa in transactions
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<ROOT><Transactions>{rows}</Transactions>"
        '<InpBuf InpKind="1"><CHECK ordernum="7" orderguid="{A1}" checknum="58812" '
        'closedatetime="2026-11-22T13:05:00" checkguid="{C1}">'
        '<CHECKLINES><LINE code="101" name="Borscht" price="45000" quantity="2"/></CHECKLINES>'
        '<CHECKPAYMENTS><PAYMENT name="Cash" sum="200000"/></CHECKPAYMENTS>'
        "</CHECK></InpBuf></ROOT>"
    )


async def test_a_till_conversation_identify_post_resend_void(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _rkeeper(make_till)
    number = str(int(till.shop.card.code))  # an Int64: leading zeros are gone
    info = _result(await _send(till, "GetCardInfoEx", _card_info(number)), "GetCardInfoEx")
    assert info["Result"] == "0"
    assert (info["Locked"], info["Deleted"], info["Holy"]) == ("0", "0", "0")
    assert info["Summa"] == "50000"  # 500 points free, in kopecks
    assert (info["Bonus"], info["Discount"]) == ("2", "3")  # BRONZE, as the mapping says
    assert info["PersonID"] == info["Account"] == number
    assert "BRONZE" in info["ScrMessage"]
    assert len(info["Holder"]) <= 39

    # 2000 rubles spent with money, 200 paid from the card, a 50-ruble discount recorded.
    check = _check((number, 3, 200000), (number, 0, -20000), (number, 1, -5000))
    posted = _result(await _send(till, "TransactionsEx", check), "TransactionsEx")
    assert posted["Result"] == "0"
    again = _result(await _send(till, "TransactionsEx", check), "TransactionsEx")
    assert again["Result"] == "0"  # re-sent after a timeout: nothing posted twice
    info = _result(await _send(till, "GetCardInfoEx", _card_info(number)), "GetCardInfoEx")
    assert info["Summa"] == str((500 - 200 + 100) * 100)  # 5 % of 2000 rubles accrued

    async with runtime.db.session(till.shop.tenant.id) as session:
        records = list(await session.scalars(select(PosTransaction)))
    assert len(records) == 1
    record = records[0]
    assert (record.order_id, record.check_amount) == (f"46347-3-58812/{number}", 220000)
    assert (record.points_redeemed, record.points_accrued, record.discount_applied) == (
        200,
        100,
        5000,
    )
    assert record.items == [{"code": "101", "name": "Borscht", "price": "45000", "quantity": "2"}]
    assert record.raw is not None
    assert "<CHECK " in record.raw

    # The check is voided: the same kinds with opposite signs.
    void = _check((number, 3, -200000), (number, 0, 20000))
    assert _result(await _send(till, "TransactionsEx", void), "TransactionsEx")["Result"] == "0"
    assert _result(await _send(till, "TransactionsEx", void), "TransactionsEx")["Result"] == "0"
    info = _result(await _send(till, "GetCardInfoEx", _card_info(number)), "GetCardInfoEx")
    assert info["Summa"] == "50000"


async def test_qr_lookup_and_unknown_cards(make_till: TillFactory, runtime: Runtime) -> None:
    till = await _rkeeper(make_till)
    payload = runtime.qr.payload(till.shop.tenant.id, till.shop.card.id)
    found = await _send(
        till,
        "FindAccountsByKind",
        f'<?xml version="1.0"?><ROOT><QRY Kind="3" Text="{payload}"/></ROOT>',
    )
    assert _result(found, "FindAccountsByKind")["Result"] == "0"
    account = fromstring(found.content).find("FindAccountsByKind/Account")
    assert account is not None
    assert account.get("Card") == str(int(till.shop.card.code))
    forged = await _send(
        till, "FindAccountsByKind", '<ROOT><QRY Kind="3" Text="ML1.AAAA.BBBB"/></ROOT>'
    )
    assert _result(forged, "FindAccountsByKind")["Result"] == "1"
    unknown = await _send(till, "GetCardInfoEx", _card_info("999999999"))
    assert _result(unknown, "GetCardInfoEx")["Result"] == "1"
    # Names are matched whatever their case.
    lower = await _send(
        till, "getcardinfoex", f'<root><qry card="{int(till.shop.card.code)}"/></root>'
    )
    assert _result(lower, "GetCardInfoEx")["Result"] == "0"


async def test_malformed_requests_are_refused_with_problems(make_till: TillFactory) -> None:
    till = await _rkeeper(make_till)
    for call, body, code in [
        ("TransactionsEx", "<ROOT><Transactions>", "invalid_xml"),
        ("TransactionsEx", "not xml at all", "invalid_xml"),
        ("GetCardInfoEx", "<ROOT/>", "invalid_request"),
        ("TransactionsEx", "<ROOT><Transactions/></ROOT>", "invalid_request"),
        (
            "TransactionsEx",
            '<ROOT><Transactions><TransactionsEx Card="1" Kind="x" Summa="1" '
            'Restaurant="12"/></Transactions></ROOT>',
            "invalid_xml",
        ),
        (
            "GetCardInfoEx",
            '<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><ROOT><QRY Card="&b;"/></ROOT>',
            "invalid_xml",
        ),
        ("GetCardInfoEx", '<!DOCTYPE ROOT><ROOT><QRY Card="1"/></ROOT>', "invalid_xml"),
        ("GetCardInfoEx", '<?xml version="1.0" encoding="shift_jis"?><ROOT/>', "invalid_xml"),
        (  # a check without its number would make every check "the same" one
            "TransactionsEx",
            '<ROOT><Transactions><TransactionsEx Card="1" Kind="3" Summa="100" '
            'Restaurant="12" RKDate="46347" RKUni="3"/></Transactions></ROOT>',
            "invalid_request",
        ),
        (
            "TransactionsEx",
            '<ROOT><Transactions><TransactionsEx Card="1" Kind="3" Summa="1" Restaurant="12" '
            'RKDate="46347" RKUni="3" RKCheck="99999999999999999999"/></Transactions></ROOT>',
            "invalid_request",
        ),
    ]:
        answer = await _send(till, call, body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == code, body
    unknown = await _send(till, "DeleteEverything", "<ROOT/>")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_call")


async def test_a_check_with_one_bad_part_applies_nothing(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _rkeeper(make_till)
    other = await make_guest(runtime, till.shop.system, restaurant_id=till.shop.restaurant.id)
    good, second = str(int(till.shop.card.code)), str(int(other.code))
    for check in [
        _check((good, 3, 100000), ("424242", 3, 100000)),  # an unknown card
        _check((good, 3, 100000), (second, 0, -10000)),  # more than the second card has
        _check((good, 3, 100000), (good, 0, -1050)),  # not whole points
        _check((good, 3, 100000), (good, 0, 5000)),  # spend and payment with opposite signs
    ]:
        refused = _result(await _send(till, "TransactionsEx", check), "TransactionsEx")
        assert refused["Result"] == "1", check
        assert refused["ErrorText"]
    async with runtime.db.session(till.shop.tenant.id) as session:
        posted = list(
            await session.scalars(
                select(PointTransaction).where(PointTransaction.check_number.is_not(None))
            )
        )
        records = list(await session.scalars(select(PosTransaction)))
    assert posted == []
    # Each refused attempt is on the record for the admin, with why and what was sent.
    assert [r.status.value for r in records] == ["FAILED"] * 4
    assert all(r.ledger_operation_id is None and r.raw for r in records)
    assert any("424242" in (r.error or "") for r in records)
    wrong_restaurant = _check((good, 3, 100000)).replace('Restaurant="12"', 'Restaurant="13"')
    refused = _result(await _send(till, "TransactionsEx", wrong_restaurant), "TransactionsEx")
    assert refused["Result"] == "1"


async def test_a_check_with_two_cards_posts_each_once(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _rkeeper(make_till)
    other = await make_guest(runtime, till.shop.system, restaurant_id=till.shop.restaurant.id)
    first, second = str(int(till.shop.card.code)), str(int(other.code))
    check = _check((first, 3, 100000), (first, 0, -10000), (second, 3, 40000))
    for _ in range(2):
        answer = _result(await _send(till, "TransactionsEx", check), "TransactionsEx")
        assert answer["Result"] == "0", answer
    async with runtime.db.session(till.shop.tenant.id) as session:
        records = list(await session.scalars(select(PosTransaction)))
    assert sorted((r.card_id, r.points_accrued, r.points_redeemed) for r in records) == sorted(
        [(till.shop.card.id, 50, 100), (other.id, 20, 0)]
    )
    void = _check((second, 3, -40000))
    assert _result(await _send(till, "TransactionsEx", void), "TransactionsEx")["Result"] == "0"
    info = _result(await _send(till, "GetCardInfoEx", _card_info(second)), "GetCardInfoEx")
    assert info["Summa"] == "0"


async def test_only_rkeeper_integrations_speak_farcards(make_till: TillFactory) -> None:
    till = await make_till("CUSTOM")
    answer = await _send(till, "GetCardInfoEx", _card_info("1"))
    assert (answer.status_code, answer.json()["code"]) == (403, "pos_system_mismatch")


async def test_a_check_resent_in_parallel_is_posted_once(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _rkeeper(make_till)
    number = str(int(till.shop.card.code))
    check = _check((number, 3, 100000), (number, 0, -10000))
    answers = await asyncio.gather(*(_send(till, "TransactionsEx", check) for _ in range(16)))
    results = [_result(a, "TransactionsEx") for a in answers]
    assert any(r["Result"] == "0" for r in results)
    # A resend that meets the first still open is refused (R-Keeper sends it again later).
    assert all(r["Result"] == "0" or "operation_in_flight" in r["ErrorText"] for r in results)
    assert _result(await _send(till, "TransactionsEx", check), "TransactionsEx")["Result"] == "0"
    info = _result(await _send(till, "GetCardInfoEx", _card_info(number)), "GetCardInfoEx")
    assert info["Summa"] == str((500 - 100 + 50) * 100)
