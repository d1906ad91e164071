"""The guest cabinet (`/app/<network>`), a Telegram Mini App and a plain web page: sign-in
by Telegram's initData or by phone and SMS code, consents first, then the card (QR, code,
balance, level, nearest expiry) and its history."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import segno
from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response, StreamingResponse

from maxloyalty.guests.errors import ConsentRequired
from maxloyalty.guests.live import guest_topic
from maxloyalty.guests.schemas import Consents
from maxloyalty.guests.service import rotating, sign_in
from maxloyalty.guests.service.cards import card_to_show, consents_given, record_consents
from maxloyalty.identity.dependencies import codes_sent_rule, default_rule, per_ip, sign_in_rule
from maxloyalty.identity.errors import NotAuthenticated
from maxloyalty.identity.models import ConsentKind
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import bind
from maxloyalty.kit.pagination import make_page, page_params
from maxloyalty.ledger.models import TxType
from maxloyalty.ledger.service import queries
from maxloyalty.loyalty.service import get_program, network_design, network_logo
from maxloyalty.network.service.directory import PublicTenant, tenant_by_slug
from maxloyalty.runtime import runtime_of
from maxloyalty.web.forms import form_of
from maxloyalty.web.pages import FormInvalid, PageRoute
from maxloyalty.web.security import check_csrf
from maxloyalty.web.sessions import holder, keep_session, public_work, sign_out
from maxloyalty.web.templating import remember_choices, render

router = APIRouter(
    prefix="/app/{slug}",
    route_class=PageRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)

REQUIRED_CONSENTS = (ConsentKind.PRIVACY_POLICY, ConsentKind.PERSONAL_DATA)
HISTORY_PAGE = 20
# A live stream pings while idle (so dead ones are noticed) and ends now and then: the
# browser reconnects, perhaps to another process, and no stream outlives a deployment.
HEARTBEAT_SECONDS = 15
STREAM_SECONDS = 300


def app_path(slug: str) -> str:
    return f"/app/{slug}"


@dataclass
class Visit:
    """Who is looking at which network's cabinet."""

    tenant: PublicTenant
    guest: Principal | None
    consented: bool

    @property
    def path(self) -> str:
        return app_path(self.tenant.slug)

    def reader(self) -> Principal:
        """The guest, for what only a signed-in guest who consented may see."""
        if self.guest is None:
            raise NotAuthenticated()
        if not self.consented:
            raise ConsentRequired()
        return self.guest


@asynccontextmanager
async def cabinet_work(request: Request, slug: str) -> AsyncIterator[tuple[Visit, AsyncSession]]:
    """The page's one unit of work: the network by its slug, and its guest if this is the
    network's own guest session (another network's, or staff's, is no session here)."""
    async with public_work(request) as session:
        tenant = await tenant_by_slug(session, slug)
        guest = await holder(request, session, app_path(tenant.slug))
        if guest is not None and (guest.role is not Role.GUEST or guest.tenant_id != tenant.id):
            guest = None
            await bind(session, tenant_id=tenant.id)
        consented = False
        if guest is not None:
            given = await consents_given(session, guest)
            consented = all(given.get(kind) for kind in REQUIRED_CONSENTS)
        yield Visit(tenant, guest, consented), session


def back_home(visit: Visit, request: Request) -> Response:
    if request.headers.get("hx-request"):
        response = Response(headers={"HX-Redirect": visit.path})
    else:
        response = RedirectResponse(visit.path, status_code=303)
    remember_choices(request, response)
    return response


def _qr_svg(payload: str) -> str:
    return segno.make(payload, error="m").svg_inline(scale=4, border=0, omitsize=True)


def wanted_card(request: Request) -> str | None:
    return request.query_params.get("card")


@router.get("")
async def cabinet(request: Request, slug: str) -> Response:
    runtime = runtime_of(request)
    async with cabinet_work(request, slug) as (visit, session):
        if visit.guest is None:
            return render(request, "guest/sign_in.html", tenant=visit.tenant, back=visit.path)
        if not visit.consented:
            return render(
                request, "guest/consents.html", tenant=visit.tenant, back=visit.path, signed_in=True
            )
        card, cards, profile = await card_to_show(session, visit.reader(), wanted_card(request))
        balance = await queries.balance(session, card, utcnow())
        design = await network_design(session)
        logo = await network_logo(session)
        system = await get_program(session, card.loyalty_system_id)
    return render(
        request,
        "guest/card.html",
        tenant=visit.tenant,
        profile=profile,
        card=card,
        cards=cards,
        balance=balance,
        design=design,
        logo=logo,
        rotating_only=system.require_rotating_code,
        can_send=len(cards) > 1 or system.allow_guest_transfers,
        qr=_qr_svg(runtime.qr.payload(visit.tenant.id, card.id)),
        zone=visit.tenant.timezone,
        back=visit.path,
        signed_in=True,
    )


@router.get("/rotating")
async def rotating_now(request: Request, slug: str) -> Response:
    """This minute's code and QR; the fragment asks for the next one as it expires."""
    runtime = runtime_of(request)
    async with cabinet_work(request, slug) as (visit, session):
        guest = visit.reader()
        card, _, _ = await card_to_show(session, guest, wanted_card(request))
        now = await rotating.rotating_code(
            session, guest, runtime.rotating_codes, runtime.qr, card.id, utcnow()
        )
    return render(
        request,
        "guest/_rotating.html",
        tenant=visit.tenant,
        card=card,
        rotating=now,
        qr=_qr_svg(now.qr) if request.query_params.get("qr") else None,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/live")
async def live(request: Request, slug: str) -> Response:
    """Server-sent events: `balance` whenever one of the guest's cards changes (or may have:
    after a gap in the feed), so the page redraws its figures within a second."""
    async with cabinet_work(request, slug) as (visit, _):
        if visit.guest is None or not visit.consented:
            return Response(status_code=204)  # EventSource stops retrying on 204
        topic = guest_topic(visit.tenant.id, visit.guest.subject)
    broker = runtime_of(request).live

    async def events() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        started = time.monotonic()
        async with broker.subscribe(topic) as subscription:
            feed = aiter(subscription)
            while time.monotonic() - started < STREAM_SECONDS:
                try:
                    message = await asyncio.wait_for(anext(feed), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ": still here\n\n"
                    continue
                except StopAsyncIteration:
                    return  # the broker closed: the browser reconnects elsewhere
                card = message.get("card_id", "") if message else ""
                yield f"event: balance\ndata: {json.dumps({'card_id': card})}\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/summary")
async def summary(request: Request, slug: str) -> Response:
    """The card's figures, re-drawn when a live update says they changed."""
    async with cabinet_work(request, slug) as (visit, session):
        card, _, _ = await card_to_show(session, visit.reader(), wanted_card(request))
        balance = await queries.balance(session, card, utcnow())
    return render(
        request, "guest/_summary.html", balance=balance, zone=visit.tenant.timezone, card=card
    )


@router.get("/history")
async def history(request: Request, slug: str) -> Response:
    kind = request.query_params.get("type", "")
    types = [TxType(kind)] if kind in TxType.__members__ else None
    cursor = request.query_params.get("cursor", "")[:64]
    paging = page_params(HISTORY_PAGE, cursor or None)
    async with cabinet_work(request, slug) as (visit, session):
        card, _, _ = await card_to_show(session, visit.reader(), wanted_card(request))
        rows, next_cursor = make_page(
            await queries.history(session, card.id, paging, types), paging
        )
    return render(
        request,
        "guest/_history_rows.html" if cursor else "guest/history.html",
        tenant=visit.tenant,
        rows=rows,
        next_cursor=next_cursor,
        kind=kind if types else None,
        card=card,
        zone=visit.tenant.timezone,
        back=visit.path,
        signed_in=True,
    )


@router.post("/telegram", dependencies=[per_ip("telegram", default_rule)])
async def telegram(request: Request, slug: str) -> Response:
    """The Mini App's script posts Telegram's initData here, with no typing."""
    form = await form_of(request)
    runtime = runtime_of(request)
    async with public_work(request) as session:
        tenant = await tenant_by_slug(session, slug)
        pair = await sign_in.telegram_login(
            session,
            runtime.settings,
            runtime.sessions,
            tenant_id=tenant.id,
            init_data=form.get("init_data", ""),
        )
    keep_session(request, pair, app_path(tenant.slug))
    response = Response(status_code=204)
    remember_choices(request, response)
    return response


@router.post("/code", dependencies=[per_ip("otp", codes_sent_rule)])
async def send_code(request: Request, slug: str) -> Response:
    form = await form_of(request)
    runtime = runtime_of(request)
    consents = Consents(
        privacy_policy=form.get("privacy_policy") == "on",
        personal_data=form.get("personal_data") == "on",
        marketing=form.get("marketing") == "on",
    )
    async with public_work(request) as session:
        tenant = await tenant_by_slug(session, slug)
        sent = await sign_in.send_code(
            session,
            runtime.settings,
            runtime.limiter,
            runtime.sms,
            runtime.otp_key,
            tenant_id=tenant.id,
            phone=form.get("phone", ""),
            consents=consents,
        )
    return render(
        request,
        "guest/_code.html",
        tenant=tenant,
        phone=form.get("phone", ""),
        sent=sent,
    )


@router.post("/verify", dependencies=[per_ip("verify", sign_in_rule)])
async def verify(request: Request, slug: str) -> Response:
    form = await form_of(request)
    code = form.get("code", "")
    if not (code.isdigit() and len(code) == 6):
        raise FormInvalid({"code": "six digits"})
    runtime = runtime_of(request)
    async with public_work(request) as session:
        tenant = await tenant_by_slug(session, slug)
        pair = await sign_in.verify_code(
            session,
            runtime.settings,
            runtime.sessions,
            runtime.limiter,
            runtime.otp_key,
            tenant_id=tenant.id,
            phone=form.get("phone", ""),
            code=code,
        )
    keep_session(request, pair, app_path(tenant.slug))
    return back_home(Visit(tenant, None, consented=False), request)


@router.post("/consents")
async def consents(request: Request, slug: str) -> Response:
    form = await form_of(request)
    decisions = {kind: form.get(kind.value.lower()) == "on" for kind in ConsentKind}
    if not all(decisions[kind] for kind in REQUIRED_CONSENTS):
        raise FormInvalid({"consents": "required"})
    async with cabinet_work(request, slug) as (visit, session):
        if visit.guest is None:
            raise NotAuthenticated()
        await record_consents(session, visit.guest, decisions)
    return back_home(visit, request)


@router.post("/sign-out")
async def sign_out_here(request: Request, slug: str) -> Response:
    async with public_work(request) as session:
        tenant = await tenant_by_slug(session, slug)
    await sign_out(request, app_path(tenant.slug))
    return back_home(Visit(tenant, None, consented=False), request)
