"""The card's branding on the pages: the programme's logo as the guests' pages load it, and
the admin's preview of the guest's card in a design before saving it.

The pages allow no inline style, so a previewed design reaches the page as a stylesheet of
its own, `/app/<network>/preview.css?background=…&foreground=…&accent=…`: the colours are in
its address, checked like a saved design, so it needs no state and no sign-in."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import segno
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import HTMLResponse, Response

from maxloyalty.guests.models import CardStatus
from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, TenantAdmin
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import FieldError, ValidationFailed, problem_responses
from maxloyalty.ledger.schemas import BalanceOut, LevelOut, NearestExpiry, NextLevel
from maxloyalty.loyalty.errors import LogoNotFound, ProgramNotFound
from maxloyalty.loyalty.models import LoyaltyLevel, ProgramType
from maxloyalty.loyalty.schemas import CardDesign
from maxloyalty.loyalty.service import get_program, levels_of, logo_of, network_design, network_logo
from maxloyalty.network.service.directory import tenant_by_slug, tenant_of
from maxloyalty.web import i18n
from maxloyalty.web.pages import PageRoute
from maxloyalty.web.sessions import public_work
from maxloyalty.web.templating import render

router = APIRouter(prefix="/app/{slug}", route_class=PageRoute, include_in_schema=False)
api = APIRouter(tags=["loyalty programme"], responses=problem_responses(*SIGNED_IN_REFUSALS))

# What the address alone decides: the card asks for `?v=<sha256>` (a new logo, a new URL),
# and a preview stylesheet's colours are in its query.
DAY_CACHE = "public, max-age=86400"
# The preview is a picture of the card: no script runs in it (the live feed, the rotating
# code and Telegram have nothing to show), and the admin's own pages may frame it.
PREVIEW_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'self'",
    )
)
HTML_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {"schema": {"type": "string"}}}}
}
_COLOURS = ("background", "foreground", "accent")
# A QR that is no card: a cashier who scans the preview finds nothing.
SAMPLE_QR = "MAXLOYALTY-PREVIEW"
SAMPLE_CODE = "123456"
SAMPLE_BALANCE = 1250
SAMPLE_EXPIRING = 300


def _(message: str) -> str:
    """Marks a message for extraction; translated when shown."""
    return message


SAMPLE_NAME = _("Anna")


def brand_css(design: CardDesign) -> str:
    """The design as the CSS custom properties the card's stylesheet reads."""
    return (
        f":root{{--card-bg:{design.background};--card-fg:{design.foreground};"
        f"--accent:{design.accent}}}\n"
    )


def _etag_matches(header: str, etag: str) -> bool:
    return any(tag.strip().removeprefix("W/") in (etag, "*") for tag in header.split(","))


@router.get("/logo")
async def logo(request: Request, slug: str) -> Response:
    """The logo of the network's card. `X-Content-Type-Options: nosniff` comes with every
    page's answer (`PageSecurityHeaders`): the bytes are only ever the checked type."""
    async with public_work(request) as session:
        await tenant_by_slug(session, slug)
        found = await network_logo(session, with_data=True)
    if found is None:
        raise LogoNotFound()
    etag = f'"{found.sha256}"'
    headers = {"ETag": etag, "Cache-Control": DAY_CACHE}
    if _etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return Response(found.data, media_type=found.content_type, headers=headers)


def _design_in(query: Mapping[str, str]) -> CardDesign:
    try:
        return CardDesign.model_validate(dict(query))
    except ValidationError as error:
        raise ValidationFailed(
            errors=[
                FieldError(
                    field=".".join(str(part) for part in ("query", *e["loc"])),
                    message=e["msg"],
                    type=e["type"],
                )
                for e in error.errors()
            ]
        ) from None


@router.get("/brand.css")
async def brand(request: Request, slug: str) -> Response:
    """The network's card design as CSS custom properties (no inline styles: the policy
    forbids them)."""
    async with public_work(request) as session:
        await tenant_by_slug(session, slug)
        design = await network_design(session)
    return Response(
        brand_css(design), media_type="text/css", headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/preview.css")
async def preview_css(request: Request, slug: str) -> Response:
    """A design's colours as the card's stylesheet, for the preview."""
    design = _design_in(request.query_params)
    async with public_work(request) as session:
        await tenant_by_slug(session, slug)
    return Response(brand_css(design), media_type="text/css", headers={"Cache-Control": DAY_CACHE})


def _sample_balance(program_type: ProgramType, levels: list[LoyaltyLevel]) -> BalanceOut:
    """Figures a guest might have: the second level (the first when there is one), halfway
    to the next, with points expiring in a month."""
    level = levels[min(1, len(levels) - 1)] if levels else None
    upcoming = next((lv for lv in levels if level and lv.position > level.position), None)
    return BalanceOut(
        card_id=uuid.UUID(int=0),
        guest_id=uuid.UUID(int=0),
        code=SAMPLE_CODE,
        status=CardStatus.ACTIVE,
        program_type=program_type,
        balance=SAMPLE_BALANCE,
        pending_balance=0,
        lifetime_spent=0,
        level=LevelOut.of(level),
        next_level=NextLevel(
            name=upcoming.name,
            min_spent=upcoming.min_spent,
            remaining_spend=(upcoming.min_spent - (level.min_spent if level else 0)) // 2,
        )
        if upcoming
        else None,
        nearest_expiry=NearestExpiry(at=utcnow() + timedelta(days=30), points=SAMPLE_EXPIRING),
    )


@api.post(
    "/api/loyalty/programs/{program_id}/preview",
    response_class=HTMLResponse,
    responses=HTML_ANSWER | problem_responses(ProgramNotFound),
)
async def preview(
    program_id: uuid.UUID,
    request: Request,
    admin: TenantAdmin,
    session: TenantSession,
    design: CardDesign | None = None,
) -> HTMLResponse:
    """The guest's card page as a guest would see it, with sample figures, in `design`
    (what the admin is about to save; the stored one when the body is empty)."""
    assert admin.tenant_id is not None
    system = await get_program(session, program_id)
    tenant = await tenant_of(session, admin.tenant_id)
    levels = await levels_of(session, system.id)
    stored_logo = await logo_of(session, system.id)
    shown = design or CardDesign.of(system.design)
    # The preview sets no cookie: it posts nothing, so its form token is a placeholder.
    request.state.csrf = "preview"
    language = i18n.language_of(request)
    card = SimpleNamespace(id=uuid.UUID(int=0), code=SAMPLE_CODE)
    return render(
        request,
        "guest/preview.html",
        headers={
            "Content-Security-Policy": PREVIEW_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        },
        tenant=tenant,
        profile=SimpleNamespace(first_name=i18n.translations(language).gettext(SAMPLE_NAME)),
        card=card,
        cards=[card],
        balance=_sample_balance(system.type, levels),
        design=shown,
        colours=urlencode({name: getattr(shown, name) for name in _COLOURS}),
        logo=stored_logo,
        rotating_only=False,
        qr=segno.make(SAMPLE_QR, error="m").svg_inline(scale=4, border=0, omitsize=True),
        zone=tenant.timezone,
        back=f"/app/{tenant.slug}",
        signed_in=True,
    )
