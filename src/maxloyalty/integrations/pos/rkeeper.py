"""R-Keeper 7 external loyalty (FarCards 6) over HTTP/XML: we are the card server.

R-Keeper asks about a card (`GetCardInfoEx`, or `FindAccountsByKind` kind 3 for a QR
code), then posts a closed check as a list of transactions (`TransactionsEx`), all or
nothing. Element and attribute names come from integrators' code, not from a published
spec, so they are matched case-insensitively.

The card number R-Keeper sees is the card's 6-digit code (as an Int64, so leading zeros
are lost on the way and restored here); PersonID and Account are the same number. Money is
in kopecks; a point is worth a ruble, so `Summa` (what the card can pay) is the points free
to spend × 100.

A check's transactions for one card become one ledger operation: guest spend (Kind 3)
plus payment from the card (Kind 0) is a sale that redeems the card payment and accrues on
the spend; the same kinds with opposite signs void it (a refund). Discounts (Kind 1) and
R-Keeper's own bonuses (Kind 2) are recorded on the POS transaction, not booked.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.models import CardStatus, GuestCard, GuestProfile
from maxloyalty.guests.service import QrSigner
from maxloyalty.integrations.pos import service
from maxloyalty.integrations.pos.models import PosIntegration
from maxloyalty.kit.errors import AppError
from maxloyalty.ledger import core
from maxloyalty.ledger.operations import CashierRequest, Context, execute
from maxloyalty.loyalty.models import LoyaltyLevel, LoyaltySystem, ProgramType
from maxloyalty.loyalty.service import KOPECKS_PER_POINT, levels_of

CALLS = ("GetCardInfoEx", "FindAccountsByKind", "TransactionsEx")
QR_KIND = 3
INT32 = 2**31 - 1
MAX_SUMMA = 10**10  # kopecks: a hundred million rubles
MAX_CODE = 32  # a restaurant code, as R-Keeper's settings hold it
FLAGS = ("Deleted", "Grab", "StopDate", "Holy", "Manager", "Locked")
SUMS = ("Sum2", "Sum3", "Sum4", "Sum5", "Sum6", "Sum7", "Sum8")


class BadRequest(AppError):
    status = 400
    code = "invalid_xml"


class Refused(Exception):
    """A check R-Keeper must be told was not applied (Result="1"), and the card's part of
    it that was refused."""

    def __init__(self, reason: str, part: CardCheck) -> None:
        super().__init__(reason)
        self.part = part


def parse(body: bytes) -> Element:
    """The document with every tag and attribute name in lower case. DTDs are refused
    outright: FarCards documents never need one."""
    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError, LookupError) as exc:
        raise BadRequest(f"The body is not well-formed XML: {exc}") from exc
    for element in root.iter():
        element.tag = element.tag.lower()
        element.attrib = {k.lower(): v for k, v in element.attrib.items()}
    return root


def text_of(body: bytes, root: Element) -> str:
    """The document as text to keep: as sent when it is UTF-8, else as parsed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if not text or "\x00" in text:
        text = str(tostring(root, encoding="unicode"))
    return text


def _int(element: Element, name: str, low: int, high: int) -> int:
    raw = element.get(name.lower())
    if raw is None:
        raise BadRequest(f"{element.tag} has no {name}.", code="invalid_request")
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"{element.tag}.{name} is not an integer: {raw[:40]!r}") from exc
    if not low <= value <= high:
        raise BadRequest(f"{element.tag}.{name} is out of range.", code="invalid_request")
    return value


def required(element: Element, name: str) -> str:
    value = element.get(name.lower())
    if value is None or not value.strip():
        raise BadRequest(f"{element.tag} has no {name}.", code="invalid_request")
    return value.strip()


def query_of(root: Element) -> Element:
    query = root.find("qry")
    if query is None:
        raise BadRequest("The request has no QRY element.", code="invalid_request")
    return query


def answer(call: str, result: int, **attributes: object) -> bytes:
    root = Element("ROOT")
    SubElement(root, call, {"Result": str(result)} | {k: str(v) for k, v in attributes.items()})
    return document(root)


def document(root: Element) -> bytes:
    encoded: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return encoded


def code_of(card_number: str) -> str | None:
    """The 6-digit code behind an R-Keeper card number (an Int64 that lost its zeros)."""
    digits = card_number.strip()
    if not digits.isdigit() or len(digits) > 6:
        return None
    return digits.zfill(6)


async def card_by_number(
    session: AsyncSession, system: LoyaltySystem, card_number: str
) -> GuestCard | None:
    code = code_of(card_number)
    if code is None:
        return None
    return await session.scalar(
        select(GuestCard)
        .where(
            GuestCard.loyalty_system_id == system.id,
            GuestCard.code == code,
            GuestCard.status != CardStatus.DELETED,
        )
        .order_by((GuestCard.status == CardStatus.ACTIVE).desc(), GuestCard.created_at.desc())
        .limit(1)
    )


async def _holder(session: AsyncSession, card: GuestCard) -> str:
    profile = await session.scalar(select(GuestProfile).where(GuestProfile.user_id == card.user_id))
    name = " ".join(p for p in (profile.first_name, profile.last_name) if p) if profile else ""
    return (name or f"Guest {card.code}")[:39]


def _mapping(integration: PosIntegration, level: LoyaltyLevel | None) -> dict[str, int]:
    levels: dict[str, dict[str, int]] = integration.settings.get("levels", {})
    return levels.get(level.name, {}) if level else {}


async def card_info(
    session: AsyncSession,
    integration: PosIntegration,
    system: LoyaltySystem,
    card: GuestCard,
    now: datetime,
) -> bytes:
    levels = await levels_of(session, system.id)
    level = next((lv for lv in levels if lv.id == card.level_id), None)
    mapped = _mapping(integration, level)
    points = system.type is ProgramType.POINTS
    free = await core.available(session, card, now) if points else 0
    locked = card.status is not CardStatus.ACTIVE
    level_text = f"{level.name}, {level.percentage.normalize()}%" if level else ""
    screen = f"{level_text} · {free} points" if points else level_text
    return answer(
        "GetCardInfoEx",
        0,
        **(dict.fromkeys(FLAGS, 0) | {"Locked": int(locked)}),
        WhyLock="Card blocked" if locked else "",
        Holder=await _holder(session, card),
        PersonID=int(card.code),
        Account=int(card.code),
        Unpay=0,
        Bonus=mapped.get("bonus", 0),
        Discount=mapped.get("discount", 0),
        DiscLimit=0,
        Summa=0 if locked else free * KOPECKS_PER_POINT,
        **dict.fromkeys(SUMS, 0),
        DopInfo=level_text[:255],
        ScrMessage=screen[:255],
        PrnMessage=(f"Your balance: {card.balance} points" if points else level_text)[:255],
    )


async def find_by_qr(
    session: AsyncSession, system: LoyaltySystem, qr: QrSigner, query: Element
) -> bytes:
    """FindAccountsByKind: kind 3 is a QR payload; other kinds find nothing here."""
    if _int(query, "Kind", 0, INT32) != QR_KIND:
        return answer("FindAccountsByKind", 1)
    try:
        card_id = qr.card_id(system.tenant_id, required(query, "Text"))
    except AppError:
        return answer("FindAccountsByKind", 1)
    card = await session.get(GuestCard, card_id)
    if card is None or card.status is CardStatus.DELETED or card.loyalty_system_id != system.id:
        return answer("FindAccountsByKind", 1)
    root = Element("ROOT")
    found = SubElement(root, "FindAccountsByKind", {"Result": "0"})
    SubElement(
        found,
        "Account",
        {
            "Card": str(int(card.code)),
            "PersonID": str(int(card.code)),
            "Account": str(int(card.code)),
            "Holder": await _holder(session, card),
        },
    )
    return document(root)


@dataclass
class CardCheck:
    """One card's transactions in one R-Keeper check."""

    card: str
    restaurant: str
    date: int
    till: int
    check: int
    sums: dict[int, int]

    @property
    def number(self) -> str:
        """The check number in the ledger: one per card, since a check may name several."""
        return f"{self.date}-{self.till}-{self.check}/{self.card}"


def card_checks(root: Element) -> list[CardCheck]:
    transactions = root.findall("./transactions/transactionsex") or root.findall("./transactionsex")
    if not transactions:
        raise BadRequest("The request has no TransactionsEx elements.", code="invalid_request")
    grouped: dict[tuple[str, str, int, int, int], dict[int, int]] = defaultdict(
        lambda: defaultdict(int)
    )
    for tx in transactions:
        kind = _int(tx, "Kind", 0, 3)
        card, restaurant = required(tx, "Card"), required(tx, "Restaurant")
        if not card.isdigit() or len(card) > 19 or len(restaurant) > MAX_CODE:
            raise BadRequest("Card or Restaurant is malformed.", code="invalid_request")
        key = (
            card,
            restaurant,
            _int(tx, "RKDate", 0, INT32),
            _int(tx, "RKUni", 0, INT32),
            _int(tx, "RKCheck", 0, INT32),
        )
        grouped[key][kind] += _int(tx, "Summa", -MAX_SUMMA, MAX_SUMMA)
    return [CardCheck(*key, sums=dict(sums)) for key, sums in grouped.items()]


def _lines(root: Element, group: str) -> list[dict[str, Any]]:
    check = root.find("./inpbuf/check")
    if check is None:
        return []
    return [dict(child.attrib) for child in check.findall(f"./{group}/*")]


def _bonus(part: CardCheck) -> list[dict[str, Any]]:
    """R-Keeper's own bonus (Kind 2) is its business; we keep the figure."""
    bonus = part.sums.get(2, 0)
    return [{"kind": "rkeeper_bonus", "sum": bonus}] if bonus else []


async def post_check(ctx: Context, integration: PosIntegration, root: Element, raw: str) -> None:
    """Apply every card's part of the check, or raise Refused (the caller rolls back)."""
    for part in card_checks(root):
        if integration.external_id and part.restaurant != integration.external_id:
            raise Refused(f"Restaurant {part.restaurant} is not this integration's.", part)
        card = await card_by_number(ctx.session, ctx.system, part.card)
        if card is None:
            raise Refused(f"No card {part.card}.", part)
        spend, card_paid = part.sums.get(3, 0), -part.sums.get(0, 0)
        discount = -part.sums.get(1, 0)
        if card_paid % KOPECKS_PER_POINT:
            raise Refused("A payment from the card must be whole rubles (points).", part)
        total = spend + card_paid
        if ctx.system.type is ProgramType.DISCOUNT:
            total += discount  # the check before the discount the level gave
        if total == 0:
            continue  # only discounts or R-Keeper's own bonuses: nothing to book
        if (spend < 0 < card_paid) or (card_paid < 0 < spend):
            raise Refused("Spend and card payment of one check have opposite signs.", part)
        direction = "sale" if total > 0 else "void"
        try:
            request = CashierRequest(
                type="REFUND" if total < 0 else "REDEMPTION" if card_paid else "SALE",
                restaurant_id=integration.restaurant_id,
                amount=abs(total),
                points=card_paid // KOPECKS_PER_POINT if card_paid > 0 else None,
                check_number=part.number,
            )
        except ValidationError as exc:
            raise Refused(f"The check is out of bounds: {exc.errors()[0]['msg']}", part) from exc
        key = f"rk:{part.restaurant}:{part.date}:{part.till}:{part.check}:{part.card}:{direction}"
        try:
            _, posted = await execute(ctx, card.user_id, request, key)
        except AppError as exc:
            raise Refused(f"{exc.code}: {exc.detail or exc.code}", part) from exc
        await service.record_check(
            ctx.session,
            integration,
            posted,
            order_id=part.number,
            check_amount=abs(total),
            items=_lines(root, "checklines"),
            payments=_lines(root, "checkpayments") + _bonus(part),
            raw=raw,
            discount=discount,
        )
