"""Register a guest, list a restaurant's guests, render a card's QR, give the guest their
card's rotating code, block or unblock a card."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Annotated

import segno
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from maxloyalty.guests.errors import (
    CardBlocked,
    CardDeleted,
    CardNotFound,
    CodeSpaceExhausted,
    RestaurantRequired,
)
from maxloyalty.guests.models import CardStatus, GuestCard, GuestProfile
from maxloyalty.guests.schemas import (
    CardStatusOut,
    CardStatusUpdate,
    GuestCreate,
    GuestFilters,
    GuestRegistered,
    GuestRow,
    RotatingCodeOut,
)
from maxloyalty.guests.service import cards as service
from maxloyalty.guests.service import rotating
from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, CardOperator, Guest, Manager, Person
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.identity.errors import InvalidPhone
from maxloyalty.identity.models import User
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import InvalidCursor, problem_responses
from maxloyalty.kit.pagination import Page, Paging, make_page
from maxloyalty.loyalty.errors import ProgramNotFound
from maxloyalty.loyalty.models import LoyaltyLevel
from maxloyalty.network.errors import RestaurantForbidden, RestaurantNotFound
from maxloyalty.runtime import runtime_of

router = APIRouter(tags=["guests"], responses=problem_responses(*SIGNED_IN_REFUSALS))


@router.post(
    "/api/guests",
    status_code=201,
    responses=problem_responses(
        InvalidPhone,
        RestaurantForbidden,
        RestaurantNotFound,
        ProgramNotFound,
        RestaurantRequired,
        CodeSpaceExhausted,
    ),
)
async def register_guest(
    body: GuestCreate, principal: CardOperator, session: TenantSession
) -> GuestRegistered:
    """Register a guest at the till (or find them) and hand out their card."""
    user, card = await service.register_guest(session, principal, body)
    return GuestRegistered(guest_id=user.id, card_id=card.id, code=card.code)


def _row(
    card: GuestCard, profile: GuestProfile, user: User, level: LoyaltyLevel | None
) -> GuestRow:
    return GuestRow(
        guest_id=card.user_id,
        card_id=card.id,
        code=card.code,
        first_name=profile.first_name,
        last_name=profile.last_name,
        phone=user.phone,
        level=level.name if level else None,
        balance=card.balance,
        lifetime_spent=card.lifetime_spent,
        total_visits=card.total_visits,
        last_visit_at=card.last_visit_at,
        status=card.status,
    )


def _csv(rows: list[GuestRow]) -> StreamingResponse:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(GuestRow.model_fields))
    writer.writeheader()
    for row in rows:
        writer.writerow(row.model_dump(mode="json"))
    return StreamingResponse(
        iter([buffer.getvalue()]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="guests.csv"'},
    )


@router.get(
    "/api/restaurants/{restaurant_id}/guests",
    response_model=Page[GuestRow],
    responses={
        200: {"content": {"text/csv": {}}, "description": "A page of guests, or (csv) all"},
        **problem_responses(
            InvalidCursor, RestaurantNotFound, RestaurantForbidden, ProgramNotFound
        ),
    },
)
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
) -> Page[GuestRow] | Response:
    """The guests whose cards work in this restaurant; `format=csv` downloads them all."""
    filters = GuestFilters(q=q, level=level, status=status, min_balance=min_balance)
    if format == "csv":
        every = await service.list_guests(session, principal, restaurant_id, filters, None)
        return _csv([_row(*r) for r in every])
    found = await service.list_guests(session, principal, restaurant_id, filters, paging)
    page, cursor = make_page([_row(*r) for r in found], paging, key="card_id")
    return Page(items=page, next_cursor=cursor)


@router.get(
    "/api/cards/{card_id}/qr.svg",
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}}, "description": "The card's QR code"},
        **problem_responses(CardNotFound),
    },
)
async def card_qr(
    card_id: uuid.UUID, principal: Person, session: TenantSession, request: Request
) -> Response:
    """The card's QR code (a signed payload) as SVG."""
    card = await service.card_of(session, principal, card_id)
    payload = runtime_of(request).qr.payload(card.tenant_id, card.id)
    buffer = io.BytesIO()
    segno.make(payload, error="m").save(buffer, kind="svg", scale=6, border=2)
    return Response(buffer.getvalue(), media_type="image/svg+xml")


@router.get(
    "/api/cards/{card_id}/rotating-code",
    responses=problem_responses(CardNotFound, CardBlocked, CodeSpaceExhausted),
)
async def card_rotating_code(
    card_id: uuid.UUID,
    principal: Guest,
    session: TenantSession,
    request: Request,
    response: Response,
) -> RotatingCodeOut:
    """This minute's code and QR of the guest's own card, for the guest app to show: the
    same all through the minute, refused at the till once it has passed. Only the guest
    may see it (staff identify by what the guest shows them)."""
    runtime = runtime_of(request)
    response.headers["Cache-Control"] = "no-store"
    return await rotating.rotating_code(
        session, principal, runtime.rotating_codes, runtime.qr, card_id, utcnow()
    )


@router.patch(
    "/api/cards/{card_id}",
    responses=problem_responses(CardNotFound, RestaurantForbidden, CardDeleted),
)
async def set_card_status(
    card_id: uuid.UUID, body: CardStatusUpdate, principal: Manager, session: TenantSession
) -> CardStatusOut:
    """Block, unblock or delete a card. A blocked card can be neither identified for
    operations nor used; a deleted one frees its 6-digit code."""
    card = await service.change_card_status(session, principal, card_id, body.status, body.reason)
    return CardStatusOut(card_id=card.id, status=card.status)
