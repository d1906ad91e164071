"""The reward catalogue in the cabinet, and buying a reward with points (at the restaurant
the guest is in: the reward may be offered in some restaurants only)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.responses import Response

from maxloyalty.guests.service.cards import card_to_show
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.pagination import PageParams, make_page
from maxloyalty.ledger.service import operations
from maxloyalty.ledger.service.idempotency import require_key
from maxloyalty.network.service.restaurants import list_restaurants
from maxloyalty.rewards.service import list_rewards, redeem
from maxloyalty.web.forms import FormKey, build, form_of
from maxloyalty.web.guest import cabinet_work, wanted_card
from maxloyalty.web.pages import PageRoute
from maxloyalty.web.security import check_csrf
from maxloyalty.web.templating import render

router = APIRouter(
    prefix="/app/{slug}",
    route_class=PageRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)
_PAGE = PageParams(limit=100, cursor=None)


@router.get("/rewards")
async def rewards_page(request: Request, slug: str) -> Response:
    async with cabinet_work(request, slug) as (visit, session):
        guest = visit.reader()
        card, _, _ = await card_to_show(session, guest, wanted_card(request))
        rewards = make_page(await list_rewards(session, guest, _PAGE, utcnow()), _PAGE)[0]
        restaurants = make_page(await list_restaurants(session, guest, _PAGE), _PAGE)[0]
    return render(
        request,
        "guest/rewards.html",
        tenant=visit.tenant,
        card=card,
        rewards=rewards,
        restaurants=restaurants,
        # One key per reward, made with the page: a second tap buys nothing more.
        keys={item.id: uuid.uuid4().hex for item in rewards},
        back=visit.path,
        signed_in=True,
    )


class _Purchase(BaseModel):
    item_id: uuid.UUID
    restaurant_id: uuid.UUID
    key: FormKey = ""


@router.post("/rewards")
async def buy_reward(request: Request, slug: str) -> Response:
    purchase = build(_Purchase, await form_of(request))
    async with cabinet_work(request, slug) as (visit, session):
        guest = visit.reader()
        ctx = await operations.open_context(session, guest, purchase.restaurant_id, utcnow())
        outcome = await redeem(ctx, guest.subject, purchase.item_id, require_key(purchase.key))
    return render(
        request,
        "guest/_bought.html",
        bought=outcome.answer,
        replayed=outcome.replayed,
    )
