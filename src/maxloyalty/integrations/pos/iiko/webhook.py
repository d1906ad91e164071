"""iikoTransport webhook events: each kept (`pos_events`) as it came, the guest's personal
fields apart and encrypted (`personal.py`), then handled on its own by the worker.

A closed table or delivery order of this integration's organization (and terminal group,
when the integration names one) that names a member — by the guest phone iiko keeps on
the order, or by the card code an iikoFront plugin puts into the order's external data
under `maxloyalty.card` — accrues points by the programme's rules, unless the till holds
points for the order (then the till's own commit posts it). The iiko order id is the check
number, so a repeated event (iiko retries, a replay, the order closed again) posts nothing
twice, and an order the till already posted through the generic POS API is left alone.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.models import CardStatus, GuestCard
from maxloyalty.guests.service.cards import card_for_guest
from maxloyalty.identity.models import User
from maxloyalty.identity.service.contacts import normalize_phone, phone_index
from maxloyalty.integrations.pos import service
from maxloyalty.integrations.pos.iiko import personal
from maxloyalty.integrations.pos.iiko.errors import EventNotFound, InvalidEvents, RetryLater
from maxloyalty.integrations.pos.models import PosEvent, PosEventStatus, PosIntegration
from maxloyalty.kit import jobs
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import Database, bind, for_update
from maxloyalty.kit.errors import AppError, NotFound
from maxloyalty.ledger.errors import OperationInFlight
from maxloyalty.ledger.models import HoldStatus, LedgerOperation
from maxloyalty.ledger.service import holds
from maxloyalty.ledger.service.operations import CashierRequest, Context, execute

log = structlog.get_logger(__name__)

PROCESS_JOB = "pos.iiko_process_events"
ORDER_EVENTS = frozenset({"TableOrderUpdate", "DeliveryOrderUpdate"})
CARD_KEY = "maxloyalty.card"
MAX_KOPECKS = 10**10
# iiko's events nest about eight levels deep; anything far deeper is not one of them.
MAX_DEPTH = 32
# PostgreSQL's jsonb takes neither NUL characters nor halves of surrogate pairs.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class Skip(Exception):
    """The event is fine but asks nothing of us: IGNORED."""


class Malformed(Exception):
    """The event breaks iiko's format where we would act on it: FAILED."""


def _storable(value: Any, path: str, depth: int, problems: list[str]) -> Any:
    """`value` as jsonb can keep it; what had to change for that is noted in `problems`."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{path} is not a finite number")
        return None
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        problems.append(f"{path} nests deeper than {MAX_DEPTH} levels")
        return None
    if isinstance(value, dict):
        cleaned = ((_UNSTORABLE.sub("\ufffd", key), item) for key, item in value.items())
        return {key: _storable(item, f"{path}.{key}", depth + 1, problems) for key, item in cleaned}
    if isinstance(value, list):
        return [
            _storable(item, f"{path}[{index}]", depth + 1, problems)
            for index, item in enumerate(value)
        ]
    return value


MAX_EVENTS = 500


def parse_events(body: bytes) -> list[Any]:
    try:
        events = json.loads(body)
    except RecursionError as exc:  # the parser recurses once per level of nesting
        raise InvalidEvents() from exc
    except ValueError as exc:  # not JSON, not UTF-8, or an integer of thousands of digits
        raise InvalidEvents("The body is not JSON.") from exc
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise InvalidEvents(f"The body must be a JSON array of at most {MAX_EVENTS} events.")
    return events


def new_event(integration: PosIntegration, raw: Any) -> PosEvent:
    """The event to keep: RECEIVED, or FAILED already when it is not an event we can keep
    as sent (not an object; numbers JSON cannot hold, which become null; absurd depth).
    NUL characters and lone surrogates become U+FFFD and the event goes on."""
    problems: list[str] = []
    payload = _storable(raw, "$", 0, problems)
    if not isinstance(payload, dict):
        payload = {"value": payload}
        problems.insert(0, "the event is not a JSON object")
    info = payload.get("eventInfo")
    external = info.get("id") if isinstance(info, dict) else None
    kept = personal.separate(payload)
    event = PosEvent(
        tenant_id=integration.tenant_id,
        integration_id=integration.id,
        event_type=str(payload.get("eventType") or "unknown")[:64],
        external_id=str(external)[:128] if external else None,
        payload=kept.payload,
        personal=kept.personal,
        phone_hash=kept.phone_hash,
        status=PosEventStatus.RECEIVED,
    )
    if problems:
        event.status = PosEventStatus.FAILED
        event.detail = f"malformed event: {'; '.join(problems)}"[:1000]
        event.processed_at = utcnow()
    return event


async def enqueue(session: AsyncSession, events: list[PosEvent]) -> None:
    """Have the worker handle the RECEIVED ones (flushed) once this transaction commits."""
    waiting = [e for e in events if e.status is PosEventStatus.RECEIVED]
    if waiting:
        ids = [str(e.id) for e in waiting]
        await jobs.enqueue(
            session, PROCESS_JOB, {"tenant_id": str(waiting[0].tenant_id), "event_ids": ids}
        )


async def caller(session: AsyncSession, hmac_key: bytes, token: str) -> PosIntegration:
    """The integration whose webhook token this is; `session` bound to its tenant."""
    await bind(session, tenant_id=service.tenant_of_webhook_token(token))
    return await service.of_webhook_token(session, hmac_key, token)


async def receive(session: AsyncSession, integration: PosIntegration, body: bytes) -> int:
    """Keep every event of a webhook call and hand them to the worker, in one transaction."""
    stored = [new_event(integration, raw) for raw in parse_events(body)]
    session.add_all(stored)
    await session.flush()
    await enqueue(session, stored)
    return len(stored)


def _kopecks(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Malformed(f"the order sum {str(value)[:40]!r} is not a number")
    kopecks = int((Decimal(str(value)) * 100).to_integral_value(ROUND_HALF_UP))
    if kopecks <= 0:
        raise Skip("the order sum is zero or negative")
    if kopecks > MAX_KOPECKS:
        raise Malformed("the order sum is out of range")
    return kopecks


def _rubles(kopecks: int) -> str:
    return f"{kopecks // 100}.{kopecks % 100:02d}"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _same_id(ours: str, theirs: Any) -> bool:
    # iiko writes its UUIDs in lower case; an admin may have pasted them otherwise.
    return isinstance(theirs, str) and theirs.lower() == ours.lower()


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


def _closed_order(integration: PosIntegration, event: PosEvent) -> tuple[str, dict[str, Any]]:
    """The iiko order id and the order (whole, as iiko sent it), if this event is a closed
    order meant for us."""
    organization = event.payload.get("organizationId")
    if integration.external_id and not _same_id(integration.external_id, organization):
        raise Skip(f"the event is for another iiko organization ({str(organization)[:64]})")
    if event.event_type not in ORDER_EVENTS:
        log.info("iiko_event_ignored", event_type=event.event_type, event_id=str(event.id))
        raise Skip(f"{event.event_type} events are not handled")
    info = _object(personal.merged(event.payload, event.personal).get("eventInfo"))
    order_id = info.get("id")
    if not isinstance(order_id, str) or not order_id:
        raise Malformed("the event carries no order id")
    if info.get("creationStatus") != "Success":
        raise Skip(f"the order's creationStatus is {str(info.get('creationStatus'))[:20]}")
    order = info.get("order")
    if not isinstance(order, dict):
        raise Skip("the event carries no order")
    if order.get("status") != "Closed":
        raise Skip(f"the order is {str(order.get('status'))[:20]}, not Closed")
    group = integration.settings.get("terminal_group_id")
    if group and not _same_id(group, order.get("terminalGroupId")):
        terminal = str(order.get("terminalGroupId"))[:64]
        raise Skip(f"the order is from another terminal group ({terminal})")
    return order_id[:64], order


async def _posted_before(session: AsyncSession, integration: PosIntegration, key: str) -> str:
    earlier = await session.scalar(
        select(LedgerOperation).where(
            LedgerOperation.idempotency_key == key, LedgerOperation.created_by == integration.id
        )
    )
    assert earlier is not None  # the ledger refused the key because of this operation
    amount = int(earlier.response["check_amount"])
    return f"the order was already posted with sum {_rubles(amount)}; nothing more accrues"


async def _accrue(session: AsyncSession, integration: PosIntegration, event: PosEvent) -> str:
    order_id, order = _closed_order(integration, event)
    amount = _kopecks(order.get("sum"))
    now = utcnow()
    # The till's plugin may be holding or committing this very order right now.
    await holds.lock_order(session, integration.id, order_id)
    hold = await holds.latest_hold(session, integration.id, order_id)
    # A hold that ran out still means the till will commit the check (a guest who pays
    # long after the pre-check); only one the till cancelled leaves the order to us.
    if hold is not None and hold.status in {HoldStatus.ACTIVE, HoldStatus.EXPIRED}:
        raise Skip("the till holds points for this order: its commit posts the check")
    ctx = await service.ledger_context(session, integration, now)
    card = await _member(ctx, order)
    event.card_id = card.id  # so that erasing the member finds the event
    request = CashierRequest(
        type="SALE", restaurant_id=integration.restaurant_id, amount=amount, check_number=order_id
    )
    key = f"iiko:{order_id}"
    try:
        answer = (await execute(ctx, card.user_id, request, key)).dump()
    except AppError as exc:
        if exc.code == "check_already_posted":
            raise Skip("the till already posted this order") from exc
        if exc.code == "idempotency_key_reused":  # closed again, with another sum or card
            raise Skip(await _posted_before(session, integration, key)) from exc
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
    """Handle one stored event in `session`'s transaction and note the outcome on it; on an
    error the caller rolls back and records it with `mark_failed`."""
    try:
        event.detail = await _accrue(session, integration, event)
        event.status = PosEventStatus.PROCESSED
    except Skip as skip:
        event.status, event.detail = PosEventStatus.IGNORED, str(skip)
    except Malformed as bad:
        event.status, event.detail = PosEventStatus.FAILED, f"malformed event: {bad}"
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


async def _locked(session: AsyncSession, event_id: uuid.UUID) -> PosEvent:
    # Locked, so that the worker and a replay never handle one event at once.
    event = await session.scalar(for_update(select(PosEvent).where(PosEvent.id == event_id)))
    assert event is not None  # events are never deleted
    return event


def _passing(error: Exception) -> bool:
    # The ledger's own refusals are final; anything else may well pass.
    return not isinstance(error, AppError) or error.code == OperationInFlight.code


async def handle(
    db: Database, tenant_id: uuid.UUID, event_id: uuid.UUID, *, again: bool = False
) -> PosEvent:
    """Process one stored event in its own transaction; a refusal is noted on the event
    (FAILED), a passing failure too, before RetryLater (the event is left RECEIVED, and the
    job that handles it runs again). Only a RECEIVED event is processed,
    unless `again` (an admin's replay)."""
    try:
        async with db.transaction(tenant_id) as session:
            event = await _locked(session, event_id)
            if event.status is not PosEventStatus.RECEIVED and not again:
                return event
            integration = await session.get(PosIntegration, event.integration_id)
            assert integration is not None
            await process(session, integration, event)
            return event
    except Exception as error:
        passing = _passing(error)
        log.warning(
            "iiko_event_failed", event_id=str(event_id), error=type(error).__name__, retry=passing
        )
        async with db.transaction(tenant_id) as session:
            event = await _locked(session, event_id)
            mark_failed(event, error)
            if passing:
                event.status, event.processed_at = PosEventStatus.RECEIVED, None
                event.detail = f"will be tried again: {event.detail}"[:1000]
        if passing:
            raise RetryLater(event.detail) from error
        return event


async def handle_all(db: Database, tenant_id: uuid.UUID, event_ids: list[uuid.UUID]) -> None:
    """The events of one webhook call, in the order iiko sent them. Run again (the worker
    died half way), it passes over those already handled."""
    for event_id in event_ids:
        await handle(db, tenant_id, event_id)


async def replay(
    session: AsyncSession,
    db: Database,
    tenant_id: uuid.UUID,
    integration_id: uuid.UUID,
    event_id: uuid.UUID,
) -> PosEvent:
    """Handle a stored event of the integration again (say, after the guest joined)."""
    event = await session.scalar(
        select(PosEvent).where(PosEvent.id == event_id, PosEvent.integration_id == integration_id)
    )
    if event is None:
        raise EventNotFound()
    return await handle(db, tenant_id, event.id, again=True)
