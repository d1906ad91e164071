"""iikoTransport webhook events: each kept raw (`pos_events`), then handled on its own.

A closed table or delivery order that names a member — by the guest phone iiko keeps on
the order, or by the card code an iikoFront plugin puts into the order's external data
under `maxloyalty.card` — accrues points by the programme's rules, unless the till holds
points for the order (then the till's own commit posts it). The iiko order id is
the check number, so a repeated event (iiko retries, or a replay) posts nothing twice,
and an order the till already posted through the generic POS API is left alone.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.models import CardStatus, GuestCard
from maxloyalty.guests.service import card_for_guest
from maxloyalty.identity.contacts import normalize_phone, phone_index
from maxloyalty.identity.models import User
from maxloyalty.integrations.pos import service
from maxloyalty.integrations.pos.models import PosEvent, PosEventStatus, PosIntegration
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import AppError, NotFound
from maxloyalty.ledger import holds
from maxloyalty.ledger.operations import CashierRequest, Context, execute, open_context

log = structlog.get_logger(__name__)

ORDER_EVENTS = frozenset({"TableOrderUpdate", "DeliveryOrderUpdate"})
CARD_KEY = "maxloyalty.card"


class Skip(Exception):
    """The event is fine but asks nothing of us."""


def new_event(integration: PosIntegration, raw: Any) -> PosEvent:
    payload = raw if isinstance(raw, dict) else {"value": raw}
    info = payload.get("eventInfo")
    external = info.get("id") if isinstance(info, dict) else None
    return PosEvent(
        tenant_id=integration.tenant_id,
        integration_id=integration.id,
        event_type=str(payload.get("eventType") or "unknown")[:64],
        external_id=str(external)[:128] if external else None,
        payload=payload,
    )


MAX_KOPECKS = 10**10


def _kopecks(value: Any) -> int:
    try:
        amount = Decimal(str(value)) * 100
    except InvalidOperation as exc:
        raise Skip(f"the order sum {str(value)[:40]!r} is not a number") from exc
    if not amount.is_finite() or not 0 < amount <= MAX_KOPECKS:
        raise Skip("the order sum is zero, negative or out of range")
    return int(amount.to_integral_value(ROUND_HALF_UP))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _card_code(order: dict[str, Any]) -> str | None:
    for entry in _list(order.get("externalData")):
        if isinstance(entry, dict) and entry.get("key") == CARD_KEY:
            return str(entry.get("value", "")).strip() or None
    return None


async def _member(ctx: Context, order: dict[str, Any]) -> GuestCard:
    code = _card_code(order)
    if code is not None:
        card = await ctx.session.scalar(
            select(GuestCard).where(
                GuestCard.code == code,
                GuestCard.status == CardStatus.ACTIVE,
                GuestCard.loyalty_system_id == ctx.system.id,
            )
        )
        if card is not None:
            return card
    phone = order.get("phone")
    if isinstance(phone, str) and phone.strip():
        try:
            index = phone_index(normalize_phone(phone))
        except AppError as exc:
            raise Skip(f"the order's phone is not usable: {exc.detail}") from exc
        user = await ctx.session.scalar(select(User.id).where(User.phone_hash == index))
        if user is not None:
            try:
                return await card_for_guest(ctx.session, ctx.system, user, ctx.restaurant.id)
            except NotFound:
                pass
    raise Skip("the order names no member of the programme")


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(order: dict[str, Any]) -> list[dict[str, Any]]:
    items = []
    for item in _list(order.get("items")):
        if not isinstance(item, dict) or item.get("deleted"):
            continue
        product = _object(item.get("product"))
        items.append(
            {
                "code": product.get("id"),
                "name": product.get("name"),
                "price": item.get("price"),
                "quantity": item.get("amount"),
            }
        )
    return items


def _payments(order: dict[str, Any]) -> list[dict[str, Any]]:
    payments = []
    for payment in _list(order.get("payments")):
        if isinstance(payment, dict):
            kind = _object(payment.get("paymentType"))
            payments.append(
                {"type": kind.get("kind") or kind.get("name"), "sum": payment.get("sum")}
            )
    return payments


async def _accrue(session: AsyncSession, integration: PosIntegration, event: PosEvent) -> str:
    if event.event_type not in ORDER_EVENTS:
        log.info("iiko_event_ignored", event_type=event.event_type, event_id=str(event.id))
        raise Skip(f"{event.event_type} events are not handled")
    info = event.payload.get("eventInfo")
    order = info.get("order") if isinstance(info, dict) else None
    if not isinstance(info, dict) or not isinstance(order, dict) or not info.get("id"):
        raise Skip("the event carries no order")
    if info.get("creationStatus") != "Success" or order.get("status") != "Closed":
        raise Skip("the order is not closed")
    order_id = str(info["id"])[:64]
    amount = _kopecks(order.get("sum"))
    if await holds.latest_hold(session, integration.id, order_id) is not None:
        raise Skip("the till holds points for this order: its commit posts the check")
    ctx = await open_context(
        session, service.principal_of(integration), integration.restaurant_id, utcnow()
    )
    card = await _member(ctx, order)
    request = CashierRequest(
        type="SALE", restaurant_id=integration.restaurant_id, amount=amount, check_number=order_id
    )
    try:
        _, answer = await execute(ctx, card.user_id, request, f"iiko:{order_id}")
    except AppError as exc:
        if exc.code == "check_already_posted":
            raise Skip("the till already posted this order") from exc
        raise
    recorded = await service.record_check(
        session,
        integration,
        answer,
        order_id=order_id,
        check_amount=amount,
        items=_items(order),
        payments=_payments(order),
    )
    if not recorded:
        raise Skip("this order was already accrued")
    return f"accrued {answer['accrued']} points on card {card.code}"


async def process(session: AsyncSession, integration: PosIntegration, event: PosEvent) -> None:
    """Handle one stored event in `session`'s transaction and note the outcome on it; on a
    failure the caller rolls back and records it with `mark_failed`."""
    try:
        event.detail = await _accrue(session, integration, event)
        event.status = PosEventStatus.PROCESSED
    except Skip as skip:
        event.status, event.detail = PosEventStatus.IGNORED, str(skip)
    event.processed_at = utcnow()
    await session.flush()


def mark_failed(event: PosEvent, error: Exception) -> None:
    event.status = PosEventStatus.FAILED
    event.detail = (
        f"{error.code}: {error.detail or ''}"
        if isinstance(error, AppError)
        else f"{type(error).__name__}: {error}"
    )[:1000]
    event.processed_at = utcnow()
