"""Sending points from the cabinet: to another of the guest's own cards (a card per
restaurant), or to a friend's card by its code where the programme allows it."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from maxloyalty.guests.errors import CardNotFound
from maxloyalty.guests.service.cards import card_to_show
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.pagination import PageParams, make_page
from maxloyalty.ledger.service import operations, transfers
from maxloyalty.ledger.service.idempotency import require_key
from maxloyalty.loyalty.service import get_program
from maxloyalty.network.service.restaurants import list_restaurants
from maxloyalty.runtime import runtime_of
from maxloyalty.web.forms import FormKey, build, form_of, whole
from maxloyalty.web.guest import cabinet_work, wanted_card
from maxloyalty.web.pages import FormInvalid, PageRoute
from maxloyalty.web.security import check_csrf
from maxloyalty.web.templating import render

router = APIRouter(
    prefix="/app/{slug}",
    route_class=PageRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)


@router.get("/transfer")
async def transfer_page(request: Request, slug: str) -> Response:
    async with cabinet_work(request, slug) as (visit, session):
        card, cards, _ = await card_to_show(session, visit.reader(), wanted_card(request))
        system = await get_program(session, card.loyalty_system_id)
    return render(
        request,
        "guest/transfer.html",
        tenant=visit.tenant,
        card=card,
        own=[c for c in cards if c.id != card.id],
        to_friends=system.allow_guest_transfers,
        key=uuid.uuid4().hex,
        back=visit.path,
        signed_in=True,
    )


class _Transfer(BaseModel):
    card_id: uuid.UUID
    to_card_id: uuid.UUID | None = None
    friend_code: str | None = Field(default=None, pattern=r"^\d{6}$")
    key: FormKey = ""


@router.post("/transfer")
async def send_points(request: Request, slug: str) -> Response:
    form = await form_of(request)
    wanted = build(_Transfer, form)
    points = whole(form.get("points"), "points")
    if points is None or points <= 0:
        raise FormInvalid({"points": "a whole number above zero"})
    if (wanted.to_card_id is None) == (wanted.friend_code is None):
        raise FormInvalid({"to_card_id": "choose one of your cards or type a friend's code"})
    runtime = runtime_of(request)
    async with cabinet_work(request, slug) as (visit, session):
        guest = visit.reader()
        card, _, _ = await card_to_show(session, guest, str(wanted.card_id))
        if card.id != wanted.card_id:  # not one of the guest's: no falling back to another
            raise CardNotFound("You have no such card.")
        target = wanted.to_card_id
        if wanted.friend_code is not None:
            system = await get_program(session, card.loyalty_system_id)
            friend = await transfers.friends_card(
                session, runtime.limiter, runtime.settings, guest, system, wanted.friend_code
            )
            target = friend.id
        assert target is not None
        # The operation's place: the card's own restaurant, or any of a network card's.
        restaurant_id = card.restaurant_id
        if restaurant_id is None:
            paging = PageParams(limit=1, cursor=None)
            restaurant_id = make_page(await list_restaurants(session, guest, paging), paging)[0][
                0
            ].id
        ctx = await operations.open_context(session, guest, restaurant_id, utcnow())
        outcome = await transfers.transfer(
            ctx, guest.subject, target, points, require_key(wanted.key)
        )
    return render(request, "guest/_sent.html", sent=outcome.answer, replayed=outcome.replayed)
