"""Sending points from the cabinet: to a friend's card by its code where the programme
allows it, once per form, and naming codes only a few times an hour."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from maxloyalty.guests.models import GuestCard
from maxloyalty.identity.principal import Role
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_guest, make_program, make_restaurant, make_tenant
from tests.web.test_guest_account import _signed_in


async def _balance(runtime: Runtime, card_id: uuid.UUID, tenant_id: uuid.UUID) -> int:
    async with runtime.db.transaction(tenant_id) as session:
        balance = await session.scalar(select(GuestCard.balance).where(GuestCard.id == card_id))
    assert balance is not None
    return balance


async def test_points_go_to_a_friend_once_per_form(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    await make_restaurant(runtime, tenant, "Тверская")
    system = await make_program(runtime, tenant, allow_guest_transfers=True)
    friend = await make_guest(runtime, system)
    cab = await _signed_in(client, runtime, 9101, tenant)
    staff = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    await client.post(
        f"/api/guest/{cab.guest_id}/transaction",
        json={
            "type": "MANUAL",
            "restaurant_id": str(cab.restaurant.id),
            "points": 300,
            "reason": "welcome",
        },
        headers=staff | {"Idempotency-Key": uuid.uuid4().hex},
    )
    card_page = await client.get(cab.app)
    assert "/transfer?card=" in card_page.text
    page = await client.get(f"{cab.app}/transfer")
    card_id = page.text.split('name="card_id" value="')[1].split('"')[0]
    key = page.text.split('name="key" value="')[1].split('"')[0]
    form = {"card_id": card_id, "key": key, "friend_code": friend.code, "points": "120"}
    first = await client.post(f"{cab.app}/transfer", data=form, headers=cab.headers)
    again = await client.post(f"{cab.app}/transfer", data=form, headers=cab.headers)
    assert first.status_code == 200, first.text
    assert "уже отправлено" in again.text
    assert await _balance(runtime, friend.id, tenant.id) == 120
    assert await _balance(runtime, uuid.UUID(card_id), tenant.id) == 180

    too_many = await client.post(
        f"{cab.app}/transfer",
        data=form | {"key": uuid.uuid4().hex, "points": "500"},
        headers=cab.headers,
    )
    assert 'data-code="insufficient_points"' in too_many.text
    for bad, code in (
        ({"points": "0"}, "form_invalid"),
        ({"friend_code": "12"}, "form_invalid"),
        ({"card_id": str(friend.id)}, "card_not_found"),  # someone else's card as the source
    ):
        answer = await client.post(
            f"{cab.app}/transfer",
            data=form | bad | {"key": uuid.uuid4().hex},
            headers=cab.headers,
        )
        assert f'data-code="{code}"' in answer.text


async def test_a_guest_cannot_collect_card_codes(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    await make_restaurant(runtime, tenant)
    await make_program(runtime, tenant, allow_guest_transfers=True)
    cab = await _signed_in(client, runtime, 9102, tenant)
    page = await client.get(f"{cab.app}/transfer")
    card_id = page.text.split('name="card_id" value="')[1].split('"')[0]
    codes = []
    for attempt in range(11):
        answer = await client.post(
            f"{cab.app}/transfer",
            data={
                "card_id": card_id,
                "key": uuid.uuid4().hex,
                "points": "1",
                "friend_code": f"{attempt:06d}",
            },
            headers=cab.headers,
        )
        codes.append(answer.text.split('data-code="')[1].split('"')[0])
    assert codes == ["card_not_found"] * 10 + ["rate_limited"]


async def test_without_the_programmes_leave_there_is_nowhere_to_send(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    cab = await _signed_in(client, runtime, 9103)
    assert "/transfer?card=" not in (await client.get(cab.app)).text
    page = await client.get(f"{cab.app}/transfer")
    assert "friend_code" not in page.text
