"""The cashier page (`/cashier`): staff sign-in, the restaurant and point of sale of this
device, identifying a guest, and posting SALE, REDEMPTION, MANUAL and REFUND; managers
also approve manual operations and search guests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from maxloyalty.guests.errors import RestaurantRequired
from maxloyalty.guests.models import GuestCard
from maxloyalty.guests.schemas import GuestFilters, IdentifyRequest
from maxloyalty.guests.service.cards import GuestListRow, list_guests
from maxloyalty.identity.errors import NotAuthenticated, RoleForbidden
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.service import sessions
from maxloyalty.identity.service.login import staff_login
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import NotFound
from maxloyalty.kit.pagination import PageParams, make_page
from maxloyalty.ledger.models import TxStatus, TxType
from maxloyalty.ledger.schemas import CashierRequest, IdentifiedCard
from maxloyalty.ledger.service import operations, queries
from maxloyalty.ledger.service.idempotency import require_key
from maxloyalty.ledger.service.identify import describe_card, identify
from maxloyalty.network.models import Restaurant
from maxloyalty.network.service.restaurants import (
    get_restaurant,
    list_points_of_sale,
    list_restaurants,
)
from maxloyalty.runtime import runtime_of
from maxloyalty.web.forms import FormKey, build, form_of, kopecks, whole
from maxloyalty.web.pages import PageRoute
from maxloyalty.web.security import check_csrf, remember_cookie
from maxloyalty.web.sessions import forget_session, holder, keep_session, public_work, sign_out
from maxloyalty.web.templating import remember_choices, render

PATH = "/cashier"
PLACE_COOKIE = "place"
STAFF = frozenset({Role.CASHIER, Role.MANAGER, Role.RESTAURANT_ADMIN})
APPROVERS = frozenset({Role.MANAGER, Role.RESTAURANT_ADMIN})
OPERATIONS = ("SALE", "REDEMPTION", "MANUAL", "REFUND")
SHIFT_ROWS = 12

router = APIRouter(
    prefix=PATH, route_class=PageRoute, include_in_schema=False, dependencies=[Depends(check_csrf)]
)


def _first(limit: int) -> PageParams:
    return PageParams(limit=limit, cursor=None)


@asynccontextmanager
async def _desk(request: Request) -> AsyncIterator[tuple[Principal | None, AsyncSession]]:
    """The page's one unit of work and its staff member, if signed in (a session of anyone
    but staff, such as the platform owner's, is no session here)."""
    async with public_work(request) as session:
        principal = await holder(request, session, PATH)
        if principal is not None and principal.role not in STAFF:
            forget_session(request, PATH)
            principal = None
        yield principal, session


@asynccontextmanager
async def _staff(request: Request) -> AsyncIterator[tuple[Principal, AsyncSession]]:
    async with _desk(request) as (principal, session):
        if principal is None:
            raise NotAuthenticated()
        yield principal, session


def _approver(principal: Principal) -> Principal:
    if principal.role not in APPROVERS:
        raise RoleForbidden()
    return principal


def _place(request: Request) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The restaurant and point of sale this device works at (remembered in a cookie)."""
    restaurant, _, pos = request.cookies.get(PLACE_COOKIE, "").partition(":")
    try:
        return uuid.UUID(restaurant), uuid.UUID(pos) if pos else None
    except ValueError:
        return None, None


def _remember_place(request: Request, restaurant_id: uuid.UUID, pos_id: uuid.UUID | None) -> None:
    remember_cookie(
        request, PLACE_COOKIE, f"{restaurant_id}:{pos_id or ''}", path=PATH, max_age=365 * 86400
    )


def _new_keys() -> dict[str, str]:
    # Made when the forms are drawn: a double click, a reload or a retry sends the same key.
    return {kind: uuid.uuid4().hex for kind in OPERATIONS}


async def _shift(
    session: AsyncSession, principal: Principal, restaurant_id: uuid.UUID
) -> list[queries.LedgerRow]:
    """The last operations here: a cashier's own, everyone's for a manager."""
    paging = _first(SHIFT_ROWS)
    rows = await queries.transactions(
        session,
        principal,
        paging,
        restaurant_id=restaurant_id,
        author=None if principal.role in APPROVERS else principal.subject,
    )
    return list(make_page(rows, paging)[0])


@router.get("")
async def cashier_home(request: Request) -> Response:
    restaurant_id, pos_id = _place(request)
    async with _desk(request) as (principal, session):
        if principal is None:
            return render(request, "cashier/sign_in.html", back=PATH)
        paging = _first(100)
        restaurants: list[Restaurant] = make_page(
            await list_restaurants(session, principal, paging), paging
        )[0]
        here = next((r for r in restaurants if r.id == restaurant_id), None)
        if here is None and len(restaurants) == 1:
            here = restaurants[0]
            _remember_place(request, here.id, None)
        points_of_sale = (
            make_page(await list_points_of_sale(session, principal, here.id, paging), paging)[0]
            if here
            else []
        )
        recent = await _shift(session, principal, here.id) if here else []
        pending = []
        if principal.role in APPROVERS:
            pending = make_page(
                await queries.transactions(
                    session, principal, _first(20), status=TxStatus.PENDING, types=[TxType.MANUAL]
                ),
                _first(20),
            )[0]
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
        # The platform owner signs in with a password too, but has no desk here: the
        # session is not kept (the refusal rolls its row back).
        principal = await sessions.resume(session, runtime.sessions, pair.refresh_token)
        if principal.role not in STAFF:
            raise RoleForbidden()
    keep_session(request, pair, PATH)
    return _after_form(request)


@router.post("/sign-out")
async def sign_out_here(request: Request) -> Response:
    await sign_out(request, PATH)
    return _after_form(request)


class _Place(BaseModel):
    restaurant_id: uuid.UUID
    pos_id: uuid.UUID | None = None


@router.post("/place")
async def choose_place(request: Request) -> Response:
    place = build(_Place, await form_of(request))
    async with _staff(request) as (principal, session):
        await get_restaurant(session, principal, place.restaurant_id)
        if place.pos_id is not None:
            paging = _first(100)
            tills = make_page(
                await list_points_of_sale(session, principal, place.restaurant_id, paging), paging
            )[0]
            if place.pos_id not in {t.id for t in tills}:
                raise NotFound("No such till in this restaurant.")
    _remember_place(request, place.restaurant_id, place.pos_id)
    return _after_form(request)


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


class _Here(BaseModel):
    restaurant_id: uuid.UUID | None = None


def _restaurant_of(request: Request, form: dict[str, str]) -> uuid.UUID:
    """The restaurant the form was drawn for (else the device's)."""
    restaurant_id = build(_Here, form).restaurant_id or _place(request)[0]
    if restaurant_id is None:
        raise RestaurantRequired("Choose the restaurant first.")
    return restaurant_id


@router.post("/identify")
async def identify_guest(request: Request) -> Response:
    form = await form_of(request)
    restaurant_id = _restaurant_of(request, form)
    wanted = _identify_request(
        restaurant_id, form.get("query", ""), kopecks(form.get("check_amount"), "check_amount")
    )
    runtime = runtime_of(request)
    async with _staff(request) as (principal, session):
        card = await identify(
            session, principal, runtime.limiter, runtime.settings, runtime.qr, wanted
        )
    return _guest_panel(request, card, restaurant_id, wanted.check_amount)


def _guest_panel(
    request: Request, card: IdentifiedCard, restaurant_id: uuid.UUID, check_amount: int | None
) -> Response:
    return render(
        request,
        "cashier/_guest.html",
        card=card,
        restaurant_id=restaurant_id,
        check_amount=check_amount,
        keys=_new_keys(),
    )


class _Guest(BaseModel):
    guest_id: uuid.UUID
    key: FormKey = ""


@router.post("/operation")
async def post_operation(request: Request) -> Response:
    form = await form_of(request)
    restaurant_id = _restaurant_of(request, form)
    posted = build(_Guest, form)
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
    async with _staff(request) as (principal, session):
        ctx = await operations.open_context(session, principal, restaurant_id, utcnow())
        outcome = await operations.execute(ctx, posted.guest_id, wanted, require_key(posted.key))
        recent = await _shift(session, principal, restaurant_id)
        # The guest panel's figures as they are now (free points and the limit too).
        row = await session.get(GuestCard, outcome.answer.card_id)  # the one posted on
        assert row is not None
        card = await describe_card(session, ctx.system, row, None)
    return render(
        request,
        "cashier/_result.html",
        result=outcome.answer,
        replayed=outcome.replayed,
        card=card,
        # A new operation on this guest is a new form: fresh keys (a replay keeps them).
        keys=None if outcome.replayed else _new_keys(),
        recent=recent,
        zone=ctx.restaurant.timezone,
    )


@router.post("/transactions/{transaction_id}/{decision}")
async def decide(request: Request, transaction_id: str, decision: str) -> Response:
    try:
        tx_id = uuid.UUID(transaction_id)
    except ValueError:
        raise NotFound("No such operation.") from None
    if decision not in {"approve", "reject"}:
        raise NotFound()
    async with _staff(request) as (principal, session):
        decided = await operations.decide(
            session, _approver(principal), tx_id, decision == "approve", utcnow()
        )
    return render(request, "cashier/_decided.html", decided=decided)


@router.get("/guests")
async def search_guests(request: Request) -> Response:
    query = request.query_params.get("q", "").strip()[:100]
    found: list[GuestListRow] = []
    async with _staff(request) as (principal, session):
        _approver(principal)
        if query:
            paging = _first(20)
            rows = await list_guests(
                session, principal, _restaurant_of(request, {}), GuestFilters(q=query), paging
            )
            found = rows[: paging.limit]  # the list fetches one more, for its cursor
    return render(request, "cashier/_guests.html", found=found, query=query)
