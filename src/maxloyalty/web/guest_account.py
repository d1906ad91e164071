"""The guest's own affairs in the cabinet: profile and children, consents, a copy of their
data and its erasure (152-FZ), and the choice among the networks they belong to."""

from __future__ import annotations

import json
import uuid
from datetime import date

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.responses import Response

from maxloyalty.guests.schemas import ChildIn, ConsentIn, ProfileUpdate
from maxloyalty.guests.service.cards import (
    add_child,
    children_of,
    consents_given,
    own_profile,
    record_consent,
    remove_child,
    update_profile,
)
from maxloyalty.identity.models import ConsentKind
from maxloyalty.network.service.directory import networks_of_person
from maxloyalty.privacy.schemas import Scope
from maxloyalty.privacy.service import export_erase
from maxloyalty.web.forms import build, form_of
from maxloyalty.web.guest import back_home, cabinet_work
from maxloyalty.web.pages import FormInvalid, PageRoute
from maxloyalty.web.security import check_csrf
from maxloyalty.web.sessions import forget_session
from maxloyalty.web.templating import render

router = APIRouter(
    prefix="/app/{slug}",
    route_class=PageRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)


@router.get("/profile")
async def profile_page(request: Request, slug: str) -> Response:
    async with cabinet_work(request, slug) as (visit, session):
        guest = visit.reader()
        profile = await own_profile(session, guest)
        children = await children_of(session, profile)
        given = await consents_given(session, guest)
        networks = await networks_of_person(session)
    return render(
        request,
        "guest/profile.html",
        tenant=visit.tenant,
        profile=profile,
        children=children,
        marketing=bool(given.get(ConsentKind.MARKETING)),
        networks=[n for n in networks if n.id != visit.tenant.id],
        back=visit.path,
        signed_in=True,
    )


class _Profile(BaseModel):
    first_name: str | None = None
    last_name: str | None = None
    birth_date: date | None = None


@router.post("/profile")
async def save_profile(request: Request, slug: str) -> Response:
    form = await form_of(request)
    typed = build(_Profile, form)
    # Empty fields clear the names; the birthday, once set, stays (it earns a yearly gift).
    changes = build(
        ProfileUpdate,
        {"first_name": typed.first_name, "last_name": typed.last_name}
        | ({"birth_date": typed.birth_date} if typed.birth_date else {}),
    )
    async with cabinet_work(request, slug) as (visit, session):
        await update_profile(session, visit.reader(), changes)
    return render(request, "guest/_saved.html")


@router.post("/children")
async def add_a_child(request: Request, slug: str) -> Response:
    child = build(ChildIn, await form_of(request))
    async with cabinet_work(request, slug) as (visit, session):
        profile = await add_child(session, visit.reader(), child)
        children = await children_of(session, profile)
    return render(request, "guest/_children.html", tenant=visit.tenant, children=children)


class _Child(BaseModel):
    child_id: uuid.UUID


@router.post("/children/remove")
async def remove_a_child(request: Request, slug: str) -> Response:
    child = build(_Child, await form_of(request))
    async with cabinet_work(request, slug) as (visit, session):
        guest = visit.reader()
        await remove_child(session, guest, child.child_id)
        children = await children_of(session, await own_profile(session, guest))
    return render(request, "guest/_children.html", tenant=visit.tenant, children=children)


@router.post("/consents/marketing")
async def marketing(request: Request, slug: str) -> Response:
    """Offers and news: given or withdrawn at any time (the other two are the card's
    condition: withdrawing them is erasing one's data, below)."""
    granted = (await form_of(request)).get("marketing") == "on"
    async with cabinet_work(request, slug) as (visit, session):
        await record_consent(
            session, visit.reader(), ConsentIn(kind=ConsentKind.MARKETING, granted=granted)
        )
    return render(request, "guest/_saved.html")


@router.get("/data")
async def my_data(request: Request, slug: str) -> Response:
    """Everything this network keeps about the guest, as a JSON file to download."""
    async with cabinet_work(request, slug) as (visit, session):
        guest = visit.reader()
        assert guest.tenant_id is not None
        copy = await export_erase.export(session, guest.tenant_id, guest.subject, Scope.NETWORK)
    return Response(
        json.dumps(copy.model_dump(mode="json"), ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="my-data-{visit.tenant.slug}.json"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/erase")
async def erase_me(request: Request, slug: str) -> Response:
    """Erase the guest's data in this network and end the session (the ledger keeps its
    anonymous history); the form asks to type a confirmation first."""
    if (await form_of(request)).get("confirm") != "on":
        raise FormInvalid({"confirm": "required"})
    async with cabinet_work(request, slug) as (visit, session):
        if visit.guest is None:
            return back_home(visit, request)
        assert visit.guest.tenant_id is not None
        await export_erase.erase(session, visit.guest.tenant_id, visit.guest.subject, Scope.NETWORK)
    forget_session(request, visit.path)
    return back_home(visit, request)
