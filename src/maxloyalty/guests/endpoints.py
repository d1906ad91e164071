"""Register a guest, list a restaurant's guests, render a card's QR, block or unblock a card."""

from __future__ import annotations

import contextlib
import csv
import io
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select

from maxloyalty.audit.service import record
from maxloyalty.guests.models import CardStatus, GuestCard, GuestProfile, RegistrationSource
from maxloyalty.guests.schemas import GuestCreate
from maxloyalty.guests.service import (
    ensure_restaurant,
    find_or_create_user_by_phone,
    join_network,
    lock_card,
    set_status,
)
from maxloyalty.identity.auth import CardOperator, Manager, Person
from maxloyalty.identity.contacts import normalize_phone, phone_index
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.kit.errors import AppError, NotFound, problem_responses
from maxloyalty.kit.pagination import Paging, make_page, paginate
from maxloyalty.kit.timestamps import rfc3339_or_none
from maxloyalty.loyalty.models import CardMode, LoyaltyLevel
from maxloyalty.loyalty.service import program_for
from maxloyalty.network.service import get_restaurant
from maxloyalty.runtime import runtime_of

router = APIRouter(tags=["guests"], responses=problem_responses(401, 403, 404, 422))


@router.post("/api/guests", status_code=201)
async def register_guest(
    body: GuestCreate, principal: CardOperator, session: TenantSession
) -> dict[str, Any]:
    """Register a guest at the till (or find them) and hand out their card."""
    ensure_restaurant(principal, body.restaurant_id)
    system = await program_for(session, body.restaurant_id)
    user = await find_or_create_user_by_phone(session, body.phone)
    card = await join_network(session, system, user, RegistrationSource.POS, body.restaurant_id)
    profile = await session.scalar(select(GuestProfile).where(GuestProfile.user_id == user.id))
    assert profile is not None
    for field in ("first_name", "last_name", "birth_date", "gender"):
        value = getattr(body, field)
        if value is not None and getattr(profile, field) is None:
            setattr(profile, field, value)
    await record(session, "guest.registered", "user", user.id, after={"card_id": str(card.id)})
    return {"guest_id": str(user.id), "card_id": str(card.id), "code": card.code}


_CSV_FIELDS = [
    "guest_id",
    "card_id",
    "code",
    "first_name",
    "last_name",
    "phone",
    "level",
    "balance",
    "lifetime_spent",
    "total_visits",
    "last_visit_at",
    "status",
]


@router.get("/api/restaurants/{restaurant_id}/guests", response_model=None)
async def list_guests(
    restaurant_id: uuid.UUID,
    principal: Manager,
    session: TenantSession,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=100, description="Name, card code or phone")] = None,
    level: Annotated[str | None, Query(max_length=32)] = None,
    status: CardStatus | None = None,
    min_balance: Annotated[int | None, Query(ge=0)] = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> dict[str, Any] | StreamingResponse:
    """The guests whose cards work in this restaurant; `format=csv` downloads them all."""
    await get_restaurant(session, principal, restaurant_id)
    system = await program_for(session, restaurant_id)
    query = (
        select(GuestCard, GuestProfile, User, LoyaltyLevel)
        .join(GuestProfile, GuestProfile.user_id == GuestCard.user_id)
        .join(User, User.id == GuestCard.user_id)
        .outerjoin(LoyaltyLevel, LoyaltyLevel.id == GuestCard.level_id)
        .where(GuestCard.loyalty_system_id == system.id)
    )
    if system.mode is CardMode.SEPARATE:
        query = query.where(GuestCard.restaurant_id == restaurant_id)
    if q:
        terms = [
            GuestProfile.first_name.ilike(f"%{q}%"),
            GuestProfile.last_name.ilike(f"%{q}%"),
            GuestCard.code == q,
        ]
        with contextlib.suppress(AppError):  # not a phone: the other terms still apply
            terms.append(User.phone_hash == phone_index(normalize_phone(q)))
        query = query.where(or_(*terms))
    if level:
        query = query.where(LoyaltyLevel.name == level.upper())
    if status:
        query = query.where(GuestCard.status == status)
    if min_balance is not None:
        query = query.where(GuestCard.balance >= min_balance)
    if format == "csv":
        rows = (await session.execute(query.order_by(GuestCard.id))).all()
        return _csv(rows)
    found: Sequence[Any] = (await session.execute(paginate(query, GuestCard.id, paging))).all()
    page, cursor = make_page([r[0] for r in found], paging)
    by_card = {r[0].id: r for r in found}
    items = []
    for c in page:
        card, profile, user, level_row = by_card[c.id]
        items.append(_row(card, profile, user, level_row))
    return {"items": items, "next_cursor": cursor}


def _row(
    card: GuestCard, profile: GuestProfile, user: User, level: LoyaltyLevel | None
) -> dict[str, Any]:
    return {
        "guest_id": str(card.user_id),
        "card_id": str(card.id),
        "code": card.code,
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "phone": user.phone,
        "level": level.name if level else None,
        "balance": card.balance,
        "lifetime_spent": card.lifetime_spent,
        "total_visits": card.total_visits,
        "last_visit_at": rfc3339_or_none(card.last_visit_at),
        "status": card.status.value,
    }


def _csv(rows: Sequence[Any]) -> StreamingResponse:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_CSV_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow(_row(*row))
    return StreamingResponse(
        iter([buffer.getvalue()]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="guests.csv"'},
    )


@router.get("/api/cards/{card_id}/qr.svg", response_class=Response)
async def card_qr(
    card_id: uuid.UUID, principal: Person, session: TenantSession, request: Request
) -> Response:
    """The card's QR code (a signed payload) as SVG."""
    card = await session.get(GuestCard, card_id)
    if card is None or (principal.role is Role.GUEST and card.user_id != principal.subject):
        raise NotFound("No such card.", code="card_not_found")
    payload = runtime_of(request).qr.payload(card.tenant_id, card.id)
    buffer = io.BytesIO()
    segno.make(payload, error="m").save(buffer, kind="svg", scale=6, border=2)
    return Response(buffer.getvalue(), media_type="image/svg+xml")


class CardStatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: CardStatus
    reason: str | None = Field(default=None, max_length=500)


@router.patch("/api/cards/{card_id}", responses=problem_responses(409))
async def set_card_status(
    card_id: uuid.UUID, body: CardStatusUpdate, principal: Manager, session: TenantSession
) -> dict[str, Any]:
    """Block, unblock or delete a card. A blocked card can be neither identified for
    operations nor used; a deleted one frees its 6-digit code."""
    card = await lock_card(session, card_id)
    if card.restaurant_id is not None:
        ensure_restaurant(principal, card.restaurant_id)
    await set_status(session, card, body.status, body.reason)
    return {"card_id": str(card.id), "status": card.status.value}
