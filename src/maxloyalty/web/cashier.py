"""The cashier page (`/cashier`): staff sign-in, the restaurant and point of sale of this
device, identifying a guest, and posting SALE, REDEMPTION, MANUAL and REFUND; managers
also approve manual operations and search guests."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.responses import RedirectResponse, Response

from maxloyalty.guests.errors import RestaurantRequired
from maxloyalty.guests.schemas import GuestFilters, IdentifyRequest
from maxloyalty.guests.service.cards import GuestListRow, list_guests
from maxloyalty.identity.errors import NotAuthenticated, RoleForbidden
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.service.login import staff_login
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import NotFound
from maxloyalty.kit.pagination import PageParams
from maxloyalty.ledger.models import TxStatus, TxType
from maxloyalty.ledger.schemas import CashierRequest, IdentifiedCard
from maxloyalty.ledger.service import operations, queries
from maxloyalty.ledger.service.idempotency import require_key
from maxloyalty.ledger.service.identify import identify
from maxloyalty.network.service.restaurants import (
    get_restaurant,
    list_points_of_sale,
    list_restaurants,
)
from maxloyalty.runtime import runtime_of
from maxloyalty.web.forms import build, form_of, kopecks, whole
from maxloyalty.web.pages import PageRoute
from maxloyalty.web.security import check_csrf, remember_cookie
from maxloyalty.web.sessions import keep_session, public_work, sign_out, signed_in, work_as
from maxloyalty.web.templating import remember_choices, render

PATH = "/cashier"
PLACE_COOKIE = "place"
STAFF = frozenset({Role.CASHIER, Role.MANAGER, Role.RESTAURANT_ADMIN})
APPROVERS = frozenset({Role.MANAGER, Role.RESTAURANT_ADMIN})
_FIRST = PageParams(limit=100, cursor=None)

router = APIRouter(
    prefix=PATH, route_class=PageRoute, include_in_schema=False, dependencies=[Depends(check_csrf)]
)


async def _staff(request: Request) -> Principal | None:
    principal = await signed_in(request, PATH)
    if principal is not None and principal.role not in STAFF:
        raise RoleForbidden()
    return principal


async def _signed_in_staff(request: Request) -> Principal:
    principal = await _staff(request)
    if principal is None:
        raise NotAuthenticated()
    return principal


Cashier = Annotated[Principal, Depends(_signed_in_staff)]


def _place(request: Request) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The restaurant and point of sale this device works at (remembered in a cookie)."""
    restaurant, _, pos = request.cookies.get(PLACE_COOKIE, "").partition(":")
    try:
        return uuid.UUID(restaurant), uuid.UUID(pos) if pos else None
    except ValueError:
        return None, None


def _new_key() -> str:
    # Made when the form is drawn: a double click, a reload or a retry sends the same key.
    return uuid.uuid4().hex


@router.get("")
async def cashier_home(request: Request) -> Response:
    principal = await _staff(request)
    if principal is None:
        return render(request, "cashier/sign_in.html", back=PATH)
    restaurant_id, pos_id = _place(request)
    async with work_as(request, principal) as session:
        restaurants = await list_restaurants(session, principal, _FIRST)
        here = next((r for r in restaurants if r.id == restaurant_id), None)
        if here is None and len(restaurants) == 1:
            here = restaurants[0]
            _remember_place(request, here.id, None)
        points_of_sale = (
            await list_points_of_sale(session, principal, here.id, _FIRST) if here else []
        )
        recent = (
            await queries.transactions(
                session, principal, PageParams(limit=12, cursor=None), restaurant_id=here.id
            )
            if here
            else []
        )
        pending = (
            await queries.transactions(
                session,
                principal,
                PageParams(limit=20, cursor=None),
                status=TxStatus.PENDING,
                types=[TxType.MANUAL],
            )
            if principal.role in APPROVERS
            else []
        )
    return render(
        request,
        "cashier/home.html",
        back=PATH,
        principal=principal,
        restaurants=restaurants,
        here=here,
        points_of_sale=points_of_sale,
        pos_id=pos_id,
        recent=recent,
        pending=pending,
        approver=principal.role in APPROVERS,
        zone=here.timezone if here else runtime_of(request).settings.default_timezone,
    )


def _after_form(request: Request) -> Response:
    """Back to the cashier's screen: htmx follows HX-Redirect, a plain form the 303."""
    if request.headers.get("hx-request"):
        response = Response(headers={"HX-Redirect": PATH})
    else:
        response = RedirectResponse(PATH, status_code=303)
    remember_choices(request, response)
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await form_of(request)
    runtime = runtime_of(request)
    async with public_work(request) as session:
        pair = await staff_login(
            session,
            runtime.sessions,
            runtime.limiter,
            runtime.settings,
            login=form.get("login", ""),
            password=form.get("password", ""),
        )
    keep_session(request, pair, PATH)
    return _after_form(request)


@router.post("/sign-out")
async def sign_out_here(request: Request) -> Response:
    await sign_out(request, PATH)
    return _after_form(request)


@router.post("/place")
async def choose_place(request: Request, principal: Cashier) -> Response:
    form = await form_of(request)
    place = build(_Place, form)
    restaurant_id, pos_id = place.restaurant_id, place.pos_id
    async with work_as(request, principal) as session:
        await get_restaurant(session, principal, restaurant_id)
    _remember_place(request, restaurant_id, pos_id)
    return _after_form(request)


def _remember_place(request: Request, restaurant_id: uuid.UUID, pos_id: uuid.UUID | None) -> None:
    remember_cookie(
        request, PLACE_COOKIE, f"{restaurant_id}:{pos_id or ''}", path=PATH, max_age=365 * 86400
    )


class _Place(BaseModel):
    restaurant_id: uuid.UUID
    pos_id: uuid.UUID | None = None


def _identify_request(restaurant_id: uuid.UUID, text: str, amount: int | None) -> IdentifyRequest:
    """One box for everything a guest shows: a 6-digit code, a card QR, or a phone."""
    compact = text.replace(" ", "")
    if compact.isdigit() and len(compact) == 6:
        given = {"code": compact}
    elif text.startswith("ML"):
        given = {"qr": text}
    else:
        given = {"phone": text}
    return build(IdentifyRequest, {"restaurant_id": restaurant_id, "check_amount": amount, **given})


def _restaurant_here(request: Request) -> uuid.UUID:
    restaurant_id, _ = _place(request)
    if restaurant_id is None:
        raise RestaurantRequired("Choose the restaurant first.")
    return restaurant_id


@router.post("/identify")
async def identify_guest(request: Request, principal: Cashier) -> Response:
    form = await form_of(request)
    restaurant_id = _restaurant_here(request)
    wanted = _identify_request(
        restaurant_id, form.get("query", ""), kopecks(form.get("check_amount"), "check_amount")
    )
    runtime = runtime_of(request)
    async with work_as(request, principal) as session:
        card = await identify(
            session, principal, runtime.limiter, runtime.settings, runtime.qr, wanted
        )
    return _guest_panel(request, card, wanted.check_amount)


def _guest_panel(request: Request, card: IdentifiedCard, check_amount: int | None) -> Response:
    return render(
        request,
        "cashier/_guest.html",
        card=card,
        check_amount=check_amount,
        keys={kind: _new_key() for kind in ("SALE", "REDEMPTION", "MANUAL", "REFUND")},
    )


@router.post("/operation")
async def post_operation(request: Request, principal: Cashier) -> Response:
    form = await form_of(request)
    restaurant_id = _restaurant_here(request)
    guest_id = build(_Guest, form).guest_id
    key = form.get("key") or ""
    wanted = build(
        CashierRequest,
        {
            "type": form.get("type"),
            "restaurant_id": restaurant_id,
            "amount": kopecks(form.get("amount"), "amount"),
            "points": whole(form.get("points"), "points"),
            "check_number": form.get("check_number"),
            "reason": form.get("reason"),
        },
    )
    async with work_as(request, principal) as session:
        ctx = await operations.open_context(session, principal, restaurant_id, utcnow())
        outcome = await operations.execute(ctx, guest_id, wanted, require_key(key))
        recent = await queries.transactions(
            session, principal, PageParams(limit=12, cursor=None), restaurant_id=restaurant_id
        )
    return render(
        request,
        "cashier/_result.html",
        result=outcome.answer,
        replayed=outcome.replayed,
        recent=recent,
        zone=ctx.restaurant.timezone,
    )


class _Guest(BaseModel):
    guest_id: uuid.UUID


@router.post("/transactions/{transaction_id}/{decision}")
async def decide(
    request: Request, principal: Cashier, transaction_id: uuid.UUID, decision: str
) -> Response:
    if principal.role not in APPROVERS:
        raise RoleForbidden()
    if decision not in {"approve", "reject"}:
        raise NotFound()
    async with work_as(request, principal) as session:
        decided = await operations.decide(
            session, principal, transaction_id, decision == "approve", utcnow()
        )
    return render(request, "cashier/_decided.html", decided=decided)


@router.get("/guests")
async def search_guests(request: Request, principal: Cashier) -> Response:
    if principal.role not in APPROVERS:
        raise RoleForbidden()
    query = request.query_params.get("q", "").strip()[:100]
    found: list[GuestListRow] = []
    if query:
        async with work_as(request, principal) as session:
            found = await list_guests(
                session,
                principal,
                _restaurant_here(request),
                GuestFilters(q=query),
                PageParams(limit=20, cursor=None),
            )
    return render(request, "cashier/_guests.html", found=found[:20], query=query)
