"""R-Keeper 7 talking FarCards HTTP/XML to us, with documents shaped as in the reference.
The helpers here serve the other modules of `tests/integrations/pos/rkeeper/` too."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
from defusedxml.ElementTree import fromstring
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.guests.models import CardStatus, GuestCard, RegistrationSource
from maxloyalty.guests.service.cards import ensure_card
from maxloyalty.integrations.pos.models import PosTransaction
from maxloyalty.ledger.models import PointTransaction, TxStatus, TxType
from maxloyalty.loyalty.service import LevelSpec
from maxloyalty.runtime import Runtime
from tests.factories import make_guest, make_restaurant
from tests.integrations.pos.conftest import Till, TillFactory

RESTAURANT = "12"
MAPPING = {"BRONZE": {"bonus": 2, "discount": 3}}
DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>'
# GetCardInfoEx's answer, attribute by attribute, as the reference writes it.
CARD_INFO_ATTRIBUTES = [
    "Result",
    "Deleted",
    "Grab",
    "StopDate",
    "Holy",
    "Manager",
    "Locked",
    "WhyLock",
    "Holder",
    "PersonID",
    "Account",
    "Unpay",
    "Bonus",
    "Discount",
    "DiscLimit",
    "Summa",
    *(f"Sum{i}" for i in range(2, 9)),
    "DopInfo",
    "ScrMessage",
    "PrnMessage",
]
CHECK_XML = (
    '<InpBuf InpKind="1"><CHECK ordernum="7" orderguid="{A1}" checknum="58812" '
    'closedatetime="2026-11-22T13:05:00" checkguid="{C1}">'
    '<CHECKLINES><LINE code="101" name="Borscht" price="45000" quantity="2"/></CHECKLINES>'
    '<CHECKCATEGS><CATEG code="1" name="Soups" sum="90000"/></CHECKCATEGS>'
    '<CHECKPAYMENTS><PAYMENT name="Cash" sum="200000"/></CHECKPAYMENTS>'
    "</CHECK></InpBuf>"
)


async def rkeeper(make_till: TillFactory, credit: int = 500) -> Till:
    """An R-Keeper till of a POINTS network, its guest's card holding `credit` points."""
    till = await make_till("RKEEPER", external_id=RESTAURANT, settings={"levels": MAPPING})
    if credit:
        await till.credit(credit)
    return till


async def rkeeper_of(
    make_till: TillFactory,
    program: str = "POINTS",
    mapping: dict[str, dict[str, int]] = MAPPING,
    **settings: object,
) -> Till:
    """An R-Keeper till of a network with a programme of kind `program` and `settings`."""
    return await make_till(
        "RKEEPER",
        program,
        settings,
        name="R-Keeper",
        external_id=RESTAURANT,
        settings={"levels": mapping},
    )


def number_of(card: GuestCard) -> str:
    return str(int(card.code))  # an Int64: leading zeros are gone


async def send(till: Till, call: str, xml: str | bytes) -> httpx.Response:
    return await till.client.post(
        f"/api/pos/rkeeper/{call}",
        content=xml.encode() if isinstance(xml, str) else xml,
        headers=till.headers | {"Content-Type": "application/xml"},
    )


def result(answer: httpx.Response, call: str) -> dict[str, str]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/xml; charset=utf-8"
    node = fromstring(answer.content).find(call)
    assert node is not None, answer.text
    return dict(node.attrib)


async def post(till: Till, xml: str | bytes) -> dict[str, str]:
    return result(await send(till, "TransactionsEx", xml), "TransactionsEx")


async def card_info(till: Till, card: str, restaurant: str = RESTAURANT) -> dict[str, str]:
    return result(await send(till, "GetCardInfoEx", card_query(card, restaurant)), "GetCardInfoEx")


def card_query(card: str, restaurant: str = RESTAURANT) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<ROOT><QRY Card="{card}" Restaurant="{restaurant}" UnitNo="3"/></ROOT>'
    )


def check_xml(*transactions: tuple[str, int, int], check: int = 58812) -> str:
    """TransactionsEx: (card, kind, summa) each, then the check's XML."""
    rows = "".join(
        f'\n  <TransactionsEx Card="{card}" PersonID="{card}" Account="{card}" Kind="{kind}" '
        f'Summa="{summa}" Restaurant="{RESTAURANT}" RKDate="46347" RKUni="3" RKCheck="{check}"/>'
        for card, kind, summa in transactions
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<ROOT><Transactions>{rows}\n</Transactions>\n{CHECK_XML}\n</ROOT>"
    )


async def records(runtime: Runtime, till: Till) -> list[PosTransaction]:
    async with runtime.db.session(till.shop.tenant.id) as session:
        return list(
            await session.scalars(select(PosTransaction).order_by(PosTransaction.created_at))
        )


async def rows_of(runtime: Runtime, till: Till, operation_id: uuid.UUID | None) -> list[Any]:
    """(type, amount, status) of a ledger operation's rows."""
    async with runtime.db.session(till.shop.tenant.id) as session:
        found = await session.scalars(
            select(PointTransaction)
            .where(PointTransaction.operation_id == operation_id)
            .order_by(PointTransaction.created_at, PointTransaction.amount)
        )
        return [(t.type, t.amount, t.status) for t in found]


async def card_now(runtime: Runtime, card: GuestCard) -> GuestCard:
    async with runtime.db.session(card.tenant_id) as session:
        found = await session.get(GuestCard, card.id)
        assert found is not None
        return found


async def set_status(runtime: Runtime, card: GuestCard, status: CardStatus) -> None:
    async with runtime.db.transaction(card.tenant_id) as session:
        found = await session.get(GuestCard, card.id)
        assert found is not None
        found.status = status


async def test_the_check_xml_is_kept_encrypted(
    make_till: TillFactory, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    till = await rkeeper(make_till)
    number = number_of(till.shop.card)
    sale = check_xml((number, 3, 200000))
    assert (await post(till, sale))["Result"] == "0"
    refused = check_xml(("999999", 3, 100000), check=58813)  # no such card: kept as FAILED
    assert (await post(till, refused))["Result"] == "1"

    async with owner_engine.connect() as conn:
        stored = list(await conn.scalars(text("SELECT raw FROM pos_transactions")))
    assert len(stored) == 2
    assert [raw for raw in stored if "TransactionsEx" in raw or number in raw] == []
    assert sorted(r.raw or "" for r in await records(runtime, till)) == sorted([sale, refused])


async def test_a_till_conversation_identify_post_resend_void(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    number = number_of(till.shop.card)
    info = await card_info(till, number)
    assert info["Result"] == "0"
    assert (info["Locked"], info["Deleted"], info["Holy"]) == ("0", "0", "0")
    assert info["Summa"] == "50000"  # 500 points free, in kopecks
    assert (info["Bonus"], info["Discount"]) == ("2", "3")  # BRONZE, as the mapping says
    assert info["PersonID"] == info["Account"] == number
    assert "BRONZE" in info["ScrMessage"]
    assert len(info["Holder"]) <= 39

    # 2000 rubles spent with money, 200 paid from the card, a 50-ruble discount recorded.
    sale = check_xml((number, 3, 200000), (number, 0, -20000), (number, 1, -5000))
    assert (await post(till, sale))["Result"] == "0"
    assert (await post(till, sale))["Result"] == "0"  # re-sent after a timeout
    info = await card_info(till, number)
    assert info["Summa"] == str((500 - 200 + 100) * 100)  # 5 % of 2000 rubles accrued

    [record] = await records(runtime, till)
    assert (record.operation, record.order_id, record.check_amount) == (
        "REDEMPTION",
        f"46347-3-58812/{number}",
        220000,
    )
    assert (record.points_redeemed, record.points_accrued, record.discount_applied) == (
        200,
        100,
        5000,
    )
    assert record.items == [{"code": "101", "name": "Borscht", "price": "45000", "quantity": "2"}]
    assert record.raw == sale
    assert await rows_of(runtime, till, record.ledger_operation_id) == [
        (TxType.REDEMPTION, -200, TxStatus.COMPLETED),
        (TxType.ACCRUAL, 100, TxStatus.COMPLETED),
    ]

    # The check is voided: the same kinds with opposite signs.
    void = check_xml((number, 3, -200000), (number, 0, 20000), (number, 1, 5000))
    assert (await post(till, void))["Result"] == "0"
    assert (await post(till, void))["Result"] == "0"
    assert (await card_info(till, number))["Summa"] == "50000"
    sold, voided = await records(runtime, till)
    assert (voided.operation, voided.order_id, voided.check_amount, voided.discount_applied) == (
        "REFUND",
        f"46347-3-58812/{number}",
        220000,
        5000,
    )
    assert voided.raw == void
    assert await rows_of(runtime, till, voided.ledger_operation_id) == [
        (TxType.REVERSAL, -100, TxStatus.COMPLETED),
        (TxType.REVERSAL, 200, TxStatus.COMPLETED),
    ]
    assert [s for _, _, s in await rows_of(runtime, till, sold.ledger_operation_id)] == [
        TxStatus.REVERSED
    ] * 2


async def test_card_info_answers_as_the_reference_does(
    make_till: TillFactory, runtime: Runtime
) -> None:
    levels = [LevelSpec("SILVER", 0, Decimal(10)), LevelSpec("GOLD", 100000, Decimal("12.50"))]
    till = await rkeeper_of(make_till, mapping={"SILVER": {"bonus": 4}}, levels=levels)
    number = number_of(till.shop.card)
    answer = await send(till, "GetCardInfoEx", card_query(number))
    assert answer.headers["content-type"] == "application/xml; charset=utf-8"
    assert answer.content.startswith(DECLARATION + b"\n<ROOT><GetCardInfoEx ")
    info = result(answer, "GetCardInfoEx")
    assert list(info) == CARD_INFO_ATTRIBUTES
    assert info == dict.fromkeys(CARD_INFO_ATTRIBUTES, "0") | {
        "WhyLock": "",
        "Holder": info["Holder"],
        "PersonID": number,
        "Account": number,
        "Bonus": "4",
        "DopInfo": "SILVER, 10%",
        "ScrMessage": "SILVER, 10% · 0 points",
        "PrnMessage": "Points available: 0",
    }
    # 1000 rubles make the guest GOLD, a level R-Keeper has no numbers for.
    assert (await post(till, check_xml((number, 3, 100000))))["Result"] == "0"
    info = await card_info(till, number)
    assert (info["DopInfo"], info["Bonus"], info["Discount"]) == ("GOLD, 12.5%", "0", "0")
    assert (info["Summa"], info["ScrMessage"]) == ("10000", "GOLD, 12.5% · 100 points")


async def test_card_info_shows_what_is_free_to_spend(make_till: TillFactory) -> None:
    till = await rkeeper(make_till)
    held = await till.call(
        "/orders/elsewhere/hold",
        {"card_id": str(till.shop.card.id), "points": 120, "check_amount": 100000},
        key="hold-1",
    )
    assert held.status_code == 201, held.text
    info = await card_info(till, number_of(till.shop.card))
    assert (info["Summa"], info["ScrMessage"], info["PrnMessage"]) == (
        "38000",
        "BRONZE, 5% · 380 points",
        "Points available: 380",
    )


async def test_qr_lookup_and_unknown_cards(make_till: TillFactory, runtime: Runtime) -> None:
    till = await rkeeper(make_till)
    payload = runtime.qr.payload(till.shop.tenant.id, till.shop.card.id)
    found = await send(
        till,
        "FindAccountsByKind",
        f'<?xml version="1.0"?><ROOT><QRY Kind="3" Text="{payload}"/></ROOT>',
    )
    assert result(found, "FindAccountsByKind")["Result"] == "0"
    account = fromstring(found.content).find("FindAccountsByKind/Account")
    assert account is not None
    assert account.get("Card") == number_of(till.shop.card)
    forged = await send(
        till, "FindAccountsByKind", '<ROOT><QRY Kind="3" Text="ML1.AAAA.BBBB"/></ROOT>'
    )
    assert result(forged, "FindAccountsByKind")["Result"] == "1"
    assert (await card_info(till, "999999999"))["Result"] == "1"  # not a 6-digit code
    # A 6-digit code no card of this network has (another network's card may).
    other = f"{(int(till.shop.card.code) + 1) % 10**6:06d}"
    assert (await card_info(till, other))["Result"] == "1"
    assert (await card_info(till, number_of(till.shop.card), restaurant="13"))["Result"] == "1"
    # Names are matched whatever their case.
    lower = await send(
        till, "getcardinfoex", f'<root><qry card="{number_of(till.shop.card)}"/></root>'
    )
    assert result(lower, "GetCardInfoEx")["Result"] == "0"


async def test_blocked_and_deleted_cards_are_flagged_and_refused(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    card, number = till.shop.card, number_of(till.shop.card)
    await set_status(runtime, card, CardStatus.BLOCKED)
    info = await card_info(till, number)
    assert (info["Result"], info["Locked"], info["WhyLock"], info["Deleted"]) == (
        "0",
        "1",
        "Card blocked",
        "0",
    )
    assert (info["Summa"], info["PrnMessage"]) == ("0", "Points available: 0")
    refused = await post(till, check_xml((number, 3, 100000)))
    assert refused["Result"] == "1"
    assert "blocked" in refused["ErrorText"]

    # Deleted, with a new card issued since: the old number must not reach the new card.
    await set_status(runtime, card, CardStatus.DELETED)
    async with runtime.db.transaction(card.tenant_id) as session:
        new = await ensure_card(
            session, till.shop.system, card.user_id, RegistrationSource.POS, card.restaurant_id
        )
    info = await card_info(till, number)
    assert (info["Result"], info["Deleted"], info["Locked"], info["Summa"]) == ("0", "1", "0", "0")
    refused = await post(till, check_xml((number, 3, 100000)))
    assert refused["Result"] == "1"
    assert "deleted" in refused["ErrorText"]
    assert (await card_now(runtime, new)).lifetime_spent == 0
    assert [r.status.value for r in await records(runtime, till)] == ["FAILED"] * 2


async def test_separate_cards_are_found_only_in_their_own_restaurant(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper_of(make_till, mode="SEPARATE")
    system, here = till.shop.system, till.shop.restaurant
    elsewhere = await make_restaurant(runtime, till.shop.tenant)
    phone = f"+7926{uuid.uuid4().int % 10_000_000:07d}"
    own = await make_guest(runtime, system, phone, restaurant_id=here.id)
    foreign = await make_guest(runtime, system, phone, restaurant_id=elsewhere.id)
    assert (own.user_id, own.restaurant_id, foreign.restaurant_id) == (
        foreign.user_id,
        here.id,
        elsewhere.id,
    )
    assert (await card_info(till, number_of(own)))["Result"] == "0"
    assert (await card_info(till, number_of(foreign)))["Result"] == "1"
    payload = runtime.qr.payload(till.shop.tenant.id, foreign.id)
    found = await send(till, "FindAccountsByKind", f'<ROOT><QRY Kind="3" Text="{payload}"/></ROOT>')
    assert result(found, "FindAccountsByKind")["Result"] == "1"
    refused = await post(till, check_xml((number_of(foreign), 3, 100000)))
    assert refused["Result"] == "1"
    assert (await card_now(runtime, own)).lifetime_spent == 0
    assert (await post(till, check_xml((number_of(own), 3, 100000))))["Result"] == "0"
    assert (await card_now(runtime, own)).lifetime_spent == 100000
    assert (await card_now(runtime, foreign)).lifetime_spent == 0


async def test_a_windows_1251_check_is_kept_as_sent(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    number = number_of(till.shop.card)
    text = (
        check_xml((number, 3, 100000))
        .replace('encoding="utf-8"', 'encoding="windows-1251"')
        .replace('name="Borscht"', 'name="Борщ «Украинский»"')
        .replace('name="Soups"', 'name="Супы"')
    )
    assert (await post(till, text.encode("cp1251")))["Result"] == "0"
    utf16 = check_xml((number, 3, 50000), check=58813).replace("utf-8", "utf-16")
    assert (await post(till, utf16.encode("utf-16")))["Result"] == "0"
    cp1251, wide = await records(runtime, till)
    assert cp1251.raw == text
    assert cp1251.items[0]["name"] == "Борщ «Украинский»"
    assert wide.raw == utf16


async def test_malformed_requests_are_refused_with_problems(make_till: TillFactory) -> None:
    till = await rkeeper(make_till)

    def one(**fields: str) -> str:
        attributes = {
            "Card": "1",
            "Kind": "3",
            "Summa": "100",
            "Restaurant": RESTAURANT,
            "RKDate": "46347",
            "RKUni": "3",
            "RKCheck": "58812",
        } | fields
        listed = " ".join(f'{k}="{v}"' for k, v in attributes.items() if v)
        return f"<ROOT><Transactions><TransactionsEx {listed}/></Transactions></ROOT>"

    for call, body, code in [
        ("TransactionsEx", "<ROOT><Transactions>", "invalid_xml"),
        ("TransactionsEx", "not xml at all", "invalid_xml"),
        ("GetCardInfoEx", "<ROOT/>", "invalid_request"),
        ("TransactionsEx", "<ROOT><Transactions/></ROOT>", "invalid_request"),
        ("TransactionsEx", one(Kind="x"), "invalid_request"),
        ("TransactionsEx", one(Summa="1_000"), "invalid_request"),
        ("TransactionsEx", one(Summa=" 100"), "invalid_request"),
        ("TransactionsEx", one(RKUni="١٢"), "invalid_request"),  # Arabic-Indic digits
        ("TransactionsEx", one(Kind="4"), "invalid_request"),
        ("TransactionsEx", one(Card="12a"), "invalid_request"),
        ("TransactionsEx", one(Card="-12"), "invalid_request"),
        ("TransactionsEx", one(Restaurant="1" * 33), "invalid_request"),
        ("TransactionsEx", one(RKCheck=""), "invalid_request"),  # every check "the same"
        ("TransactionsEx", one(RKCheck="99999999999999999999"), "invalid_request"),
        ("GetCardInfoEx", '<ROOT><QRY Card="1_000"/></ROOT>', "invalid_request"),
        ("GetCardInfoEx", '<ROOT><QRY Card="²"/></ROOT>', "invalid_request"),
        ("FindAccountsByKind", '<ROOT><QRY Kind="x" Text="a"/></ROOT>', "invalid_request"),
        (
            "GetCardInfoEx",
            '<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><ROOT><QRY Card="&b;"/></ROOT>',
            "invalid_xml",
        ),
        ("GetCardInfoEx", '<!DOCTYPE ROOT><ROOT><QRY Card="1"/></ROOT>', "invalid_xml"),
        ("GetCardInfoEx", '<?xml version="1.0" encoding="shift_jis"?><ROOT/>', "invalid_xml"),
        ("GetCardInfoEx", '<?xml version="1.0" encoding="rot13"?><ROOT/>', "invalid_xml"),
        # Codecs Python has and XML has not (they raised plain UnicodeErrors, or decoded
        # to other text than the parser read).
        ("GetCardInfoEx", '<?xml version="1.0" encoding="punycode"?><ROOT/>', "invalid_xml"),
        ("GetCardInfoEx", '<?xml version="1.0" encoding="undefined"?><ROOT/>', "invalid_xml"),
        (
            "GetCardInfoEx",
            '<?xml version="1.0" encoding="unicode_escape"?>'
            '<ROOT><QRY Card="1" UnitNo="\\x00"/></ROOT>',
            "invalid_xml",
        ),
        (  # read as UTF-16 by its byte order mark, then naming no known encoding
            "GetCardInfoEx",
            '<?xml version="1.0" encoding="cp1251x"?><ROOT/>'.encode("utf-16"),
            "invalid_xml",
        ),
    ]:
        answer = await send(till, call, body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == code, body
    # A byte windows-1251 leaves undefined.
    answer = await send(
        till,
        "GetCardInfoEx",
        b'<?xml version="1.0" encoding="windows-1251"?><ROOT><QRY Card="1" UnitNo="\x98"/></ROOT>',
    )
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_xml")
    unknown = await send(till, "DeleteEverything", "<ROOT/>")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_call")


async def test_only_rkeeper_integrations_speak_farcards(make_till: TillFactory) -> None:
    till = await make_till("CUSTOM")
    answer = await send(till, "GetCardInfoEx", card_query("1"))
    assert (answer.status_code, answer.json()["code"]) == (403, "pos_system_mismatch")


async def test_a_check_resent_in_parallel_is_posted_once(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await rkeeper(make_till)
    number = number_of(till.shop.card)
    check = check_xml((number, 3, 100000), (number, 0, -10000))
    answers = await asyncio.gather(*(send(till, "TransactionsEx", check) for _ in range(16)))
    results = [result(a, "TransactionsEx") for a in answers]
    assert any(r["Result"] == "0" for r in results)
    # A resend that meets the first still open is refused (R-Keeper sends it again later).
    assert all(r["Result"] == "0" or "operation_in_flight" in r["ErrorText"] for r in results)
    assert (await post(till, check))["Result"] == "0"
    assert (await card_info(till, number))["Summa"] == str((500 - 100 + 50) * 100)
    assert len([r for r in await records(runtime, till) if r.ledger_operation_id]) == 1
