"""The cabinet's own-affairs pages in-process: profile and children, consents, a copy of
one's data and its erasure, the reward catalogue, and the other networks one belongs to."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy import func, select

from maxloyalty.identity.models import Consent, ConsentKind, User
from maxloyalty.identity.principal import Role
from maxloyalty.ledger.models import PointTransaction, TxType
from maxloyalty.network.models import Restaurant, Tenant
from maxloyalty.rewards.models import RedemptionItem
from maxloyalty.runtime import Runtime
from tests.conftest import TELEGRAM_BOT_TOKEN, TokenFactory
from tests.factories import make_program, make_restaurant, make_tenant
from tests.identity.test_primitives import signed_init_data


@dataclass
class Cabinet:
    tenant: Tenant
    restaurant: Restaurant
    app: str
    headers: dict[str, str]
    guest_id: uuid.UUID


async def _signed_in(
    client: httpx.AsyncClient, runtime: Runtime, telegram_id: int, tenant: Tenant | None = None
) -> Cabinet:
    """A guest of a new network (or `tenant`), signed in from Telegram, consents given."""
    if tenant is None:
        tenant = await make_tenant(runtime)
        await make_restaurant(runtime, tenant, "Тверская")
        await make_program(runtime, tenant, pending_days=0)
    async with runtime.db.transaction(tenant.id) as session:
        restaurant = await session.scalar(select(Restaurant))
    assert restaurant is not None
    app = f"/app/{tenant.slug}"
    await client.get(app)
    headers = {"X-CSRF-Token": client.cookies["csrf"], "HX-Request": "true"}
    init_data = signed_init_data(TELEGRAM_BOT_TOKEN, telegram_id)
    assert (
        await client.post(f"{app}/telegram", data={"init_data": init_data}, headers=headers)
    ).status_code == 204
    consents = {"privacy_policy": "on", "personal_data": "on"}
    assert (await client.post(f"{app}/consents", data=consents, headers=headers)).is_success
    async with runtime.db.transaction() as session:
        guest_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
    assert guest_id is not None
    return Cabinet(tenant, restaurant, app, headers, guest_id)


async def test_the_guest_keeps_their_profile_and_children(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    cab = await _signed_in(client, runtime, 9001)
    saved = await client.post(
        f"{cab.app}/profile",
        data={"first_name": "Анна", "last_name": "Иванова", "birth_date": "1990-03-14"},
        headers=cab.headers,
    )
    assert saved.status_code == 200, saved.text
    page = await client.get(f"{cab.app}/profile")
    assert 'value="Анна"' in page.text
    assert 'value="1990-03-14" readonly' in page.text
    # The birthday is set once: it earns a gift every year.
    moved = await client.post(
        f"{cab.app}/profile", data={"birth_date": "1991-01-01"}, headers=cab.headers
    )
    assert 'data-code="birth_date_locked"' in moved.text
    bad = await client.post(f"{cab.app}/profile", data={"birth_date": "14.03"}, headers=cab.headers)
    assert 'data-code="form_invalid"' in bad.text

    added = await client.post(
        f"{cab.app}/children",
        data={"name": "Миша", "birth_date": "2019-06-01"},
        headers=cab.headers,
    )
    assert "Миша" in added.text
    child_id = added.text.split('name="child_id" value="')[1].split('"')[0]
    removed = await client.post(
        f"{cab.app}/children/remove", data={"child_id": child_id}, headers=cab.headers
    )
    assert "Миша" not in removed.text
    forged = await client.post(
        f"{cab.app}/children/remove", data={"child_id": str(uuid.uuid4())}, headers=cab.headers
    )
    assert 'data-code="child_not_found"' in forged.text


async def test_offers_can_be_withdrawn_and_given_again(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    cab = await _signed_in(client, runtime, 9002)
    await client.post(
        f"{cab.app}/consents/marketing", data={"marketing": "on"}, headers=cab.headers
    )
    await client.post(f"{cab.app}/consents/marketing", data={}, headers=cab.headers)
    async with runtime.db.transaction(cab.tenant.id) as session:
        decisions = list(
            await session.scalars(
                select(Consent.granted)
                .where(Consent.kind == ConsentKind.MARKETING)
                .order_by(Consent.recorded_at)
            )
        )
    assert decisions == [False, True, False]  # the sign-in's, then the two changes
    assert "checked" not in (await client.get(f"{cab.app}/profile")).text.split("marketing")[1][:40]


async def test_a_copy_of_the_data_then_its_erasure(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    cab = await _signed_in(client, runtime, 9003)
    await client.post(f"{cab.app}/profile", data={"first_name": "Анна"}, headers=cab.headers)
    copy = await client.get(f"{cab.app}/data")
    assert copy.headers["content-disposition"].startswith("attachment;")
    data = json.loads(copy.text)
    assert data["user"]["telegram_id"] == 9003
    assert "Анна" in copy.text

    unconfirmed = await client.post(f"{cab.app}/erase", data={}, headers=cab.headers)
    assert 'data-code="form_invalid"' in unconfirmed.text
    erased = await client.post(f"{cab.app}/erase", data={"confirm": "on"}, headers=cab.headers)
    assert erased.headers["hx-redirect"] == cab.app
    assert 'name="phone"' in (await client.get(cab.app)).text  # signed out: the sign-in page
    again = await client.get(f"{cab.app}/data", headers={"HX-Request": "true"})
    assert 'data-code="not_authenticated"' in again.text


async def test_a_reward_is_bought_once_however_often_it_is_tapped(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    cab = await _signed_in(client, runtime, 9004)
    async with runtime.db.transaction(cab.tenant.id) as session:
        session.add_all(
            [
                RedemptionItem(tenant_id=cab.tenant.id, name="Кофе", points_price=150),
                RedemptionItem(tenant_id=cab.tenant.id, name="Торт", points_price=5000),
            ]
        )
    staff = await auth(Role.RESTAURANT_ADMIN, cab.tenant.id)
    granted = await client.post(
        f"/api/guest/{cab.guest_id}/transaction",
        json={
            "type": "MANUAL",
            "restaurant_id": str(cab.restaurant.id),
            "points": 200,
            "reason": "welcome",
        },
        headers=staff | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert granted.status_code == 201, granted.text

    page = await client.get(f"{cab.app}/rewards")
    assert "Кофе" in page.text
    coffee = page.text.split("Кофе")[0].rsplit('name="item_id" value="', 1)[1].split('"')[0]
    key = page.text.split(f'value="{coffee}"><input type="hidden" name="key" value="')[1][:32]
    form = {"item_id": coffee, "key": key, "restaurant_id": str(cab.restaurant.id)}
    first = await client.post(f"{cab.app}/rewards", data=form, headers=cab.headers)
    second = await client.post(f"{cab.app}/rewards", data=form, headers=cab.headers)
    assert "Кофе" in first.text
    assert "уже" in second.text  # shown again, not bought again
    async with runtime.db.transaction(cab.tenant.id) as session:
        bought = await session.scalar(
            select(func.count())
            .select_from(PointTransaction)
            .where(PointTransaction.type == TxType.REDEMPTION)
        )
    assert bought == 1

    cake = page.text.split("Торт")[0].rsplit('name="item_id" value="', 1)[1].split('"')[0]
    short = await client.post(
        f"{cab.app}/rewards",
        data={"item_id": cake, "key": uuid.uuid4().hex, "restaurant_id": str(cab.restaurant.id)},
        headers=cab.headers,
    )
    assert 'data-code="insufficient_points"' in short.text


async def test_a_guest_of_two_networks_is_shown_the_other(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    first = await _signed_in(client, runtime, 9005)
    second = await _signed_in(client, runtime, 9005)
    page = await client.get(f"{second.app}/profile")
    others = page.text.split("<h2>Ваши другие сети</h2>")[1].split("</section>")[0]
    assert f'href="{first.app}"' in others
    assert f'href="{second.app}"' not in others
