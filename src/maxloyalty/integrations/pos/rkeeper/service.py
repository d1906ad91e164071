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
the spend; the same kinds with opposite signs cancel it (a refund of exactly the points of
the Kind 0 and the accrual's share of the Kind 3). Discounts (Kind 1) and R-Keeper's own
bonuses (Kind 2) are recorded on the POS transaction, not booked (a card part with only
those is recorded alone, once).

R-Keeper re-sends a check until it hears Result="0": a sale is known by the ledger's
record of its check, a cancellation by its amounts, so neither is booked twice.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any
from xml.etree.ElementTree import Element, SubElement

import structlog
from pydantic import ValidationError
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from maxloyalty.config import Settings
from maxloyalty.guests.models import CardStatus, GuestCard, GuestProfile
from maxloyalty.identity.principal import Principal
from maxloyalty.integrations.pos import service
from maxloyalty.integrations.pos.models import PosIntegration, PosSystem
from maxloyalty.integrations.pos.rkeeper.protocol import (
    INT32,
    QR_KIND,
    SUMS,
    CardCheck,
    answer,
    bonus,
    card_checks,
    card_number,
    document,
    integer,
    lines,
    parse,
    query_of,
    required,
)
from maxloyalty.kit.db import for_update
from maxloyalty.kit.errors import AppError
from maxloyalty.kit.ratelimit import RateLimiter
from maxloyalty.kit.signing import QrSigner
from maxloyalty.ledger.models import LedgerOperation, PointTransaction, TxType
from maxloyalty.ledger.service import core
from maxloyalty.ledger.service.identify import limit_lookups
from maxloyalty.ledger.service.operations import CashierRequest, Context, check_key, execute
from maxloyalty.loyalty.models import CardMode, LoyaltyLevel, LoyaltySystem, ProgramType
from maxloyalty.loyalty.service import KOPECKS_PER_POINT, discount_percent, levels_of, percent_of

log = structlog.get_logger(__name__)

STATUS_ORDER = case(
    (GuestCard.status == CardStatus.ACTIVE, 0), (GuestCard.status == CardStatus.BLOCKED, 1), else_=2
)


class Refused(Exception):
    """A check R-Keeper must be told was not applied (Result="1"), and the card's part of
    it that was refused."""

    def __init__(self, reason: str, part: CardCheck) -> None:
        super().__init__(reason)
        self.part = part


def _ours(integration: PosIntegration, restaurant: str) -> bool:
    return not integration.external_id or restaurant.strip() == integration.external_id


def _here(integration: PosIntegration, system: LoyaltySystem) -> tuple[ColumnElement[bool], ...]:
    """Cards of the programme that applies at the integration's restaurant: one per
    network, or in SEPARATE mode the restaurant's own (as the ledger picks them)."""
    restaurant = (
        GuestCard.restaurant_id == integration.restaurant_id
        if system.mode is CardMode.SEPARATE
        else GuestCard.restaurant_id.is_(None)
    )
    return GuestCard.loyalty_system_id == system.id, restaurant


async def card_by_number(
    session: AsyncSession, integration: PosIntegration, system: LoyaltySystem, number: str
) -> GuestCard | None:
    """The card behind an R-Keeper card number (the code), deleted ones too (R-Keeper is
    told so); a code belongs to one active card, but may have been a retired card's."""
    if len(number) > 6:
        return None
    return await session.scalar(
        select(GuestCard)
        .where(GuestCard.code == number.zfill(6), *_here(integration, system))
        .order_by(STATUS_ORDER, GuestCard.created_at.desc())
        .limit(1)
    )


async def _holder(session: AsyncSession, card: GuestCard) -> str:
    profile = await session.scalar(select(GuestProfile).where(GuestProfile.user_id == card.user_id))
    name = " ".join(p for p in (profile.first_name, profile.last_name) if p) if profile else ""
    return (name or f"Guest {card.code}")[:39]


def _mapping(integration: PosIntegration, level: LoyaltyLevel | None) -> dict[str, int]:
    levels: dict[str, dict[str, int]] = integration.settings.get("levels", {})
    return levels.get(level.name, {}) if level else {}


def _percent(value: Decimal) -> str:
    return format(value.normalize(), "f")  # 10, not 1E+1


async def _level_of(session: AsyncSession, card: GuestCard) -> LoyaltyLevel | None:
    levels = await levels_of(session, card.loyalty_system_id)
    return next((lv for lv in levels if lv.id == card.level_id), None)


async def card_info(
    session: AsyncSession,
    integration: PosIntegration,
    system: LoyaltySystem,
    query: Element,
    now: datetime,
) -> bytes:
    """GetCardInfoEx: Result 1 for no such card here; a blocked or deleted card is found
    and flagged (Locked, Deleted) with nothing to spend."""
    number = card_number(query)
    restaurant = query.get("restaurant")
    if restaurant is not None and not _ours(integration, restaurant):
        return answer("GetCardInfoEx", 1)
    card = await card_by_number(session, integration, system, number)
    if card is None:
        return answer("GetCardInfoEx", 1)
    level = await _level_of(session, card)
    mapped = _mapping(integration, level)
    points = system.type is ProgramType.POINTS
    active = card.status is CardStatus.ACTIVE
    free = await core.available(session, card, now) if points and active else 0
    level_text = f"{level.name}, {_percent(level.percentage)}%" if level else ""
    screen = " · ".join(t for t in (level_text, f"{free} points" if points else "") if t)
    return answer(
        "GetCardInfoEx",
        0,
        Deleted=int(card.status is CardStatus.DELETED),
        Grab=0,
        StopDate=0,
        Holy=0,
        Manager=0,
        Locked=int(card.status is CardStatus.BLOCKED),
        WhyLock="Card blocked" if card.status is CardStatus.BLOCKED else "",
        Holder=await _holder(session, card),
        PersonID=int(card.code),
        Account=int(card.code),
        Unpay=0,
        Bonus=mapped.get("bonus", 0),
        Discount=mapped.get("discount", 0),
        DiscLimit=0,
        Summa=free * KOPECKS_PER_POINT,
        **dict.fromkeys(SUMS, 0),
        DopInfo=level_text[:255],
        ScrMessage=screen[:255],
        PrnMessage=(f"Points available: {free}" if points else level_text)[:255],
    )


async def find_by_qr(
    session: AsyncSession,
    integration: PosIntegration,
    system: LoyaltySystem,
    qr: QrSigner,
    query: Element,
) -> bytes:
    """FindAccountsByKind: kind 3 is a QR payload; other kinds find nothing here."""
    if integer(query, "Kind", 0, INT32) != QR_KIND:
        return answer("FindAccountsByKind", 1)
    try:
        card_id = qr.card_id(system.tenant_id, required(query, "Text"))
    except AppError:
        return answer("FindAccountsByKind", 1)
    card = await session.scalar(
        select(GuestCard).where(
            GuestCard.id == card_id,
            GuestCard.status != CardStatus.DELETED,
            *_here(integration, system),
        )
    )
    if card is None:
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


async def serve(
    session: AsyncSession,
    principal: Principal,
    limiter: RateLimiter,
    settings: Settings,
    qr: QrSigner,
    call: str,
    body: bytes,
    now: datetime,
) -> bytes:
    """The answer to one FarCards call (`protocol.call_named`) from the integration whose
    key made it: card lookups (as rate limited as any identification), or a closed check."""
    integration, ctx = await service.till_context(session, principal, now, PosSystem.RKEEPER)
    root, raw = parse(body)
    if call == "TransactionsEx":
        return await transactions(ctx, integration, root, raw)
    await limit_lookups(limiter, settings, ctx.principal)
    if call == "GetCardInfoEx":
        return await card_info(session, integration, ctx.system, query_of(root), now)
    return await find_by_qr(session, integration, ctx.system, qr, query_of(root))


async def transactions(ctx: Context, integration: PosIntegration, root: Element, raw: str) -> bytes:
    """TransactionsEx: the check applied whole (Result 0), or not at all (Result 1, the
    refusal recorded): a savepoint undoes what its parts booked before one was refused."""
    # The savepoint's rollback expires the loaded rows: keep what the refusal's record needs.
    tenant_id, integration_id = integration.tenant_id, integration.id
    try:
        async with ctx.session.begin_nested():
            await post_check(ctx, integration, root, raw)
    except Refused as refused:
        log.info("rkeeper_check_refused", integration=str(integration_id), why=str(refused))
        part = refused.part
        await service.record_refusal(
            ctx.session,
            tenant_id,
            integration_id,
            order_id=part.number,
            check_amount=part.spend + part.card_paid,
            raw=raw,
            error=str(refused),
        )
        return answer("TransactionsEx", 1, ErrorText=str(refused)[:255])
    return answer("TransactionsEx", 0)


async def post_check(ctx: Context, integration: PosIntegration, root: Element, raw: str) -> None:
    """Apply every card's part of the check, or raise Refused (the caller rolls back)."""
    items, payments = lines(root, "checklines"), lines(root, "checkpayments")
    # Cards in one order, so that two checks naming the same cards lock them alike.
    for part in sorted(card_checks(root), key=lambda p: int(p.card)):
        card = await _card_of(ctx, integration, part)
        discount = abs(part.sums.get(1, 0))
        if not part.spend and not part.card_paid:  # only R-Keeper's discount or bonus
            _usable(card, part)
            await service.record_note(
                ctx.session,
                integration,
                card,
                business_key=part.key("note" if part.normal != {False} else "note:void"),
                order_id=part.number,
                items=items,
                payments=payments + bonus(part),
                raw=raw,
                discount=discount,
            )
            continue
        posted = await _post(ctx, integration, part, card)
        if posted is not None:
            await service.record_check(
                ctx.session,
                integration,
                posted,
                order_id=part.number,
                check_amount=part.spend + part.card_paid,
                items=items,
                payments=payments + bonus(part),
                raw=raw,
                discount=discount,
            )


async def _card_of(ctx: Context, integration: PosIntegration, part: CardCheck) -> GuestCard:
    """The part's card, once the part is fit to apply."""
    if not _ours(integration, part.restaurant):
        raise Refused(f"Restaurant {part.restaurant} is not this integration's.", part)
    if len(part.normal) > 1:
        raise Refused("The card's transactions mix normal and cancellation signs.", part)
    card = await card_by_number(ctx.session, integration, ctx.system, part.card)
    if card is None:
        raise Refused(f"No card {part.card}.", part)
    if part.card_paid % KOPECKS_PER_POINT:
        raise Refused("A payment from the card must be whole rubles (points).", part)
    return card


async def _post(
    ctx: Context, integration: PosIntegration, part: CardCheck, card: GuestCard
) -> dict[str, Any] | None:
    """The ledger's answer for the part, or None when there is nothing new to book."""
    if part.normal == {False}:
        return await _cancel(ctx, integration, part, card)
    return await _sell(ctx, integration, part, card)


async def _sale_of(
    ctx: Context, integration: PosIntegration, part: CardCheck, *, lock: bool = False
) -> LedgerOperation | None:
    """The ledger operation that posted the part's sale (the ledger's business key)."""
    query = select(LedgerOperation).where(
        LedgerOperation.business_key == check_key(integration.restaurant_id, part.number)
    )
    return await ctx.session.scalar(for_update(query) if lock else query)


def _usable(card: GuestCard, part: CardCheck) -> None:
    # Checked here, not left to the ledger: for a deleted card it would book on the
    # guest's current card, which is not the one R-Keeper named.
    if card.status is not CardStatus.ACTIVE:
        raise Refused(f"Card {part.card} is {card.status.value.lower()}.", part)


async def _sell(
    ctx: Context, integration: PosIntegration, part: CardCheck, card: GuestCard
) -> dict[str, Any] | None:
    """A re-sent sale is known by the ledger's record of the check, not by the request it
    became (in a DISCOUNT programme that depends on the card's level, which this very
    check may have raised)."""
    redeemed = part.card_paid // KOPECKS_PER_POINT
    sold = await _sale_of(ctx, integration, part)
    if sold is not None:
        if (sold.response.get("paid_amount"), sold.response.get("redeemed")) != (
            part.spend,
            redeemed,
        ):
            raise Refused(f"Check {part.number} was already posted with other amounts.", part)
        return None
    _usable(card, part)
    check = part.spend
    if ctx.system.type is ProgramType.DISCOUNT:
        pct = discount_percent(ctx.system, await _level_of(ctx.session, card))
        check = _check_before_discount(part.spend, pct, part.spend + abs(part.sums.get(1, 0)))
    request = _request(
        part,
        type="REDEMPTION" if redeemed else "SALE",
        restaurant_id=integration.restaurant_id,
        amount=check + part.card_paid,
        points=redeemed or None,
        check_number=part.number,
    )
    return await _execute(ctx, card, request, part.key("sale"), part)


def _check_before_discount(paid: int, pct: Decimal, hint: int) -> int:
    """The check the ledger should see so that its discount at `pct` leaves exactly what
    the guest paid (the spend is Kind 3, whatever discount R-Keeper gave): of the checks
    that do, the one nearest to R-Keeper's own (`hint`, spend + discount). A whole
    discount leaves nothing to pay on any check: then R-Keeper's."""
    if pct >= 100:
        return hint

    def first(target: int) -> int:
        """The smallest check leaving at least `target` to pay (that is monotonic)."""
        low, high = target, math.ceil(target * 100 / (100 - Fraction(pct)))
        while low < high:
            middle = (low + high) // 2
            if middle - percent_of(middle, pct) >= target:
                high = middle
            else:
                low = middle + 1
        return low

    return min(max(hint, first(paid)), first(paid + 1) - 1)


async def _cancel(
    ctx: Context, integration: PosIntegration, part: CardCheck, card: GuestCard
) -> dict[str, Any] | None:
    """A cancellation is known by its amounts: the same ones again for the check are a
    re-send; others are a further cancellation. Cancellations of a check take turns (a
    lock on its sale's row): each is reckoned on what the one before left, and a re-send
    finds the first one's operation."""
    sold = await _sale_of(ctx, integration, part, lock=True)
    if sold is None:
        raise Refused(f"No check {part.number} to cancel.", part)
    key = part.key(f"void:{part.spend}:{part.card_paid}")
    done = await ctx.session.scalar(
        select(LedgerOperation.id).where(
            LedgerOperation.created_by == ctx.principal.subject,
            LedgerOperation.idempotency_key == key,
        )
    )
    if done is not None:
        return None
    _usable(card, part)
    request = _request(
        part,
        type="REFUND",
        restaurant_id=integration.restaurant_id,
        amount=_refund_amount(sold.response, await _refunded(ctx.session, sold.id), part),
        check_number=part.number,
    )
    return await _execute(ctx, card, request, key, part)


async def _refunded(session: AsyncSession, sale_id: uuid.UUID) -> int:
    """How much of the check the ledger has refunded so far (kopecks of its check)."""
    original = aliased(PointTransaction)
    rows = await session.execute(
        select(PointTransaction.operation_id, func.max(PointTransaction.check_amount))
        .where(
            PointTransaction.type == TxType.REVERSAL,
            PointTransaction.reverses_id.in_(
                select(original.id).where(original.operation_id == sale_id)
            ),
        )
        .group_by(PointTransaction.operation_id)
    )
    return sum(int(amount or 0) for _, amount in rows)


def _refund_amount(sold: dict[str, Any], before: int, part: CardCheck) -> int:
    """The refund amount at which the ledger's split (each figure of the check in
    proportion to the cumulative refunded share, rounded down) returns exactly the points
    of the Kind 0 and takes back the accrual's share of the Kind 3; refused when no share
    does (the ledger cannot return points out of proportion to the spend)."""
    check, paid = int(sold["check_amount"]), int(sold["paid_amount"])
    redeemed, accrued = int(sold["redeemed"]), int(sold["accrued"])
    spend = paid * before // check + part.spend
    points = redeemed * before // check + part.card_paid // KOPECKS_PER_POINT
    if spend > paid or points > redeemed:
        raise Refused(f"The cancellation is more than is left of check {part.number}.", part)
    taken = accrued * spend // paid if paid else 0
    low, high = before + 1, check
    for total, wanted in ((redeemed, points), (paid, spend), (accrued, taken)):
        if total:  # total * share // check == wanted
            low = max(low, -(-check * wanted // total))
            high = min(high, -(-check * (wanted + 1) // total) - 1)
    if low > high:
        raise Refused(
            f"{part.card_paid // KOPECKS_PER_POINT} points back with {part.spend} kopecks of "
            "spend is out of proportion to the check: the ledger cannot book it.",
            part,
        )
    return low - before


def _request(part: CardCheck, **fields: Any) -> CashierRequest:
    try:
        return CashierRequest(**fields)
    except ValidationError as exc:
        raise Refused(f"The check is out of bounds: {exc.errors()[0]['msg']}", part) from exc


async def _execute(
    ctx: Context, card: GuestCard, request: CashierRequest, key: str, part: CardCheck
) -> dict[str, Any]:
    try:
        posted = (await execute(ctx, card.user_id, request, key)).dump()
    except AppError as exc:
        raise Refused(f"{exc.code}: {exc.detail or exc.code}", part) from exc
    return posted
