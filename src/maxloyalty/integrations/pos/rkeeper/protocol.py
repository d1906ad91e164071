"""The FarCards 6 XML that R-Keeper 7 speaks to its card server: reading a request (in the
encoding the till declared, DTDs refused, names matched case-insensitively, since they come
from integrators' code rather than a published spec), a check's transactions grouped by card,
and the answers we write."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from maxloyalty.integrations.pos.rkeeper.errors import InvalidRequest, InvalidXml, UnknownCall

CALLS = ("GetCardInfoEx", "FindAccountsByKind", "TransactionsEx")
MEDIA_TYPE = "application/xml; charset=utf-8"
DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
QR_KIND = 3
INT32 = 2**31 - 1
INT64 = 2**63 - 1
MAX_SUMMA = 10**10  # kopecks: a hundred million rubles
MAX_CODE = 32  # a restaurant code, as R-Keeper's settings hold it
SUMS = ("Sum2", "Sum3", "Sum4", "Sum5", "Sum6", "Sum7", "Sum8")
INTEGER = re.compile(r"-?[0-9]{1,19}")  # ASCII only: int() would take "1_000" or " ١٢ "
# What a till may declare (codecs.lookup names): Unicode, and the Cyrillic and Western
# code pages that a Windows or DOS till might use.
TEXT_ENCODINGS = frozenset(
    {
        "utf-8",
        "utf-16",
        "utf-16-le",
        "utf-16-be",
        "ascii",
        "iso8859-1",
        "iso8859-5",
        "cp1251",
        "cp1252",
        "cp866",
        "koi8-r",
    }
)
DECLARED = re.compile(rb"(?:\xef\xbb\xbf)?<\?xml[^>]*?\sencoding\s*=\s*[\"']([A-Za-z][\w.-]*)[\"']")
# Kinds whose Summa is negative in a normal check (payment from the card, discount);
# bonus (2) and guest spend (3) are positive. A cancellation has every sign reversed.
NEGATIVE_KINDS = frozenset({0, 1})


def call_named(call: str) -> str:
    """The FarCards call a path names, spelt as R-Keeper spells it."""
    name = next((c for c in CALLS if c.lower() == call.lower()), None)
    if name is None:
        raise UnknownCall(f"FarCards call {call} is not served here.")
    return name


def parse(body: bytes) -> tuple[Element, str]:
    """The document with every tag and attribute name in lower case, and its text as sent
    (to keep verbatim). DTDs are refused outright: FarCards documents never need one."""
    text = _decoded(body)
    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError, LookupError) as exc:
        raise InvalidXml(f"The body is not well-formed XML: {exc}") from exc
    for element in root.iter():
        element.tag = element.tag.lower()
        element.attrib = {k.lower(): v for k, v in element.attrib.items()}
    return root, text


def _decoded(body: bytes) -> str:
    """The body in its declared encoding (R-Keeper on a Russian Windows may well send
    windows-1251), UTF-16 by its byte order mark, else UTF-8, as XML says."""
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        declared = DECLARED.match(body)
        encoding = declared[1].decode() if declared else "utf-8"
    try:
        known = codecs.lookup(encoding).name in TEXT_ENCODINGS
    except LookupError:
        known = False
    if not known:  # Python also knows codecs (rot13, punycode, …) that XML parsers do not
        raise InvalidXml(f"The encoding {encoding[:40]!r} is not supported.")
    try:
        return body.decode(encoding)
    except UnicodeError as exc:
        raise InvalidXml(f"The body is not {encoding} text: {exc}") from exc


def integer(element: Element, name: str, low: int, high: int) -> int:
    raw = element.get(name.lower())
    if raw is None:
        raise InvalidRequest(f"{element.tag} has no {name}.")
    if not INTEGER.fullmatch(raw):
        raise InvalidRequest(f"{element.tag}.{name} is not an integer: {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise InvalidRequest(f"{element.tag}.{name} is out of range.")
    return value


def required(element: Element, name: str) -> str:
    value = element.get(name.lower())
    if value is None or not value.strip():
        raise InvalidRequest(f"{element.tag} has no {name}.")
    return value.strip()


def card_number(element: Element) -> str:
    """R-Keeper's card number, an Int64: "000123" and "123" are the same card."""
    return str(integer(element, "Card", 0, INT64))


def query_of(root: Element) -> Element:
    query = root.find("qry")
    if query is None:
        raise InvalidRequest("The request has no QRY element.")
    return query


def answer(call: str, result: int, **attributes: object) -> bytes:
    root = Element("ROOT")
    SubElement(root, call, {"Result": str(result)} | {k: str(v) for k, v in attributes.items()})
    return document(root)


def document(root: Element) -> bytes:
    # Written by hand: ElementTree's declaration has single quotes, unlike the reference's.
    return (DECLARATION + tostring(root, encoding="unicode")).encode()


@dataclass
class CardCheck:
    """One card's transactions in one R-Keeper check."""

    card: str
    restaurant: str
    date: int
    till: int
    check: int
    sums: dict[int, int] = field(default_factory=dict)
    # One entry per transaction with a non-zero Summa: True for a normal check's sign.
    normal: set[bool] = field(default_factory=set)

    @property
    def number(self) -> str:
        """The check number in the ledger: one per card, since a check may name several."""
        return f"{self.date}-{self.till}-{self.check}/{self.card}"

    @property
    def spend(self) -> int:
        return abs(self.sums.get(3, 0))

    @property
    def card_paid(self) -> int:
        return abs(self.sums.get(0, 0))

    def key(self, what: str) -> str:
        return f"rk:{self.restaurant}:{self.date}:{self.till}:{self.check}:{self.card}:{what}"


def card_checks(root: Element) -> list[CardCheck]:
    transactions = root.findall("./transactions/transactionsex") or root.findall("./transactionsex")
    if not transactions:
        raise InvalidRequest("The request has no TransactionsEx elements.")
    parts: dict[tuple[str, str, int, int, int], CardCheck] = {}
    for tx in transactions:
        kind = integer(tx, "Kind", 0, 3)
        card, restaurant = card_number(tx), required(tx, "Restaurant")
        if len(restaurant) > MAX_CODE:
            raise InvalidRequest("Restaurant is too long.")
        key = (
            card,
            restaurant,
            integer(tx, "RKDate", 0, INT32),
            integer(tx, "RKUni", 0, INT32),
            integer(tx, "RKCheck", 0, INT32),
        )
        part = parts.setdefault(key, CardCheck(*key))
        summa = integer(tx, "Summa", -MAX_SUMMA, MAX_SUMMA)
        part.sums[kind] = part.sums.get(kind, 0) + summa
        if summa:
            part.normal.add((summa < 0) == (kind in NEGATIVE_KINDS))
    return list(parts.values())


def lines(root: Element, group: str) -> list[dict[str, Any]]:
    check = root.find("./inpbuf/check")
    if check is None:
        return []
    return [dict(child.attrib) for child in check.findall(f"./{group}/*")]


def bonus(part: CardCheck) -> list[dict[str, Any]]:
    """R-Keeper's own bonus (Kind 2) is its business; we keep the figure."""
    bonus = part.sums.get(2, 0)
    return [{"kind": "rkeeper_bonus", "sum": bonus}] if bonus else []
