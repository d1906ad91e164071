from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine

from maxloyalty.guests.models import GuestCard
from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.identity.service.tokens import decode_access_token
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.signing import window_end, window_of
from maxloyalty.ledger.service import operations
from maxloyalty.ledger.service.operations import CashierRequest
from maxloyalty.ledger.service.verify import verify_tenant
from maxloyalty.loyalty.models import LoyaltySystem
from maxloyalty.network.models import Restaurant, Tenant
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_guest, make_program, make_restaurant, make_tenant


@dataclass
class Shop:
    """A POINTS network with one restaurant, a guest's card and a cashier's headers."""

    tenant: Tenant
    restaurant: Restaurant
    system: LoyaltySystem
    card: GuestCard
    cashier: dict[str, str]
    manager: dict[str, str]
    client: httpx.AsyncClient

    @property
    def guest_id(self) -> uuid.UUID:
        return self.card.user_id

    async def post(
        self, body: dict[str, object], key: str | None = None, guest: uuid.UUID | None = None
    ) -> httpx.Response:
        headers = self.cashier | {"Idempotency-Key": key or uuid.uuid4().hex}
        return await self.client.post(
            f"/api/guest/{guest or self.guest_id}/transaction",
            json={"restaurant_id": str(self.restaurant.id)} | body,
            headers=headers,
        )

    async def balance(self) -> dict[str, object]:
        answer = await self.client.get(f"/api/guest/{self.guest_id}/balance", headers=self.cashier)
        assert answer.status_code == 200, answer.text
        data: dict[str, object] = answer.json()
        return data


ShopFactory = Callable[..., object]


@pytest.fixture
def make_shop(
    runtime: Runtime, client: httpx.AsyncClient, auth: TokenFactory
) -> Callable[..., object]:
    async def build(program_type: str = "POINTS", **settings: object) -> Shop:
        tenant = await make_tenant(runtime, timezone="Asia/Yekaterinburg")
        restaurant = await make_restaurant(runtime, tenant)
        system = await make_program(runtime, tenant, program_type, **settings)
        card = await make_guest(runtime, system, restaurant_id=restaurant.id)
        # Tokens of real people, since operations record who posted them.
        async with runtime.db.transaction() as session:
            people = [User(role=Role.CASHIER), User(role=Role.MANAGER)]
            session.add_all(people)
            await session.flush()
        return Shop(
            tenant=tenant,
            restaurant=restaurant,
            system=system,
            card=card,
            cashier=await auth(Role.CASHIER, tenant.id, (restaurant.id,), subject=people[0].id),
            manager=await auth(Role.MANAGER, tenant.id, (restaurant.id,), subject=people[1].id),
            client=client,
        )

    return build


@pytest.fixture
def in_a_window() -> Iterator[datetime]:
    """Time frozen 5 s into the next minute's window of rotating codes, so that every call
    of a test falls into one window (tokens made before stay good: this is ahead)."""
    start = window_end(window_of(utcnow())) + timedelta(seconds=5)
    with time_machine.travel(start, tick=False):
        yield start


async def assert_ledger_consistent(runtime: Runtime, shop: Shop) -> None:
    async with runtime.db.transaction(shop.tenant.id) as session:
        _, mismatches = await verify_tenant(session)
    assert mismatches == []


async def grant(shop: Shop, points: int) -> None:
    """Points for the test to spend: a manual credit by the manager."""
    answer = await shop.client.post(
        f"/api/guest/{shop.guest_id}/transaction",
        json={
            "type": "MANUAL",
            "restaurant_id": str(shop.restaurant.id),
            "points": points,
            "reason": "test funds",
        },
        headers=shop.manager | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert answer.status_code == 201, answer.text


async def post_at(
    runtime: Runtime, shop: Shop, when: datetime, request: dict[str, Any]
) -> dict[str, Any]:
    """An operation as if it happened at `when` (services take the clock explicitly)."""
    principal, _ = decode_access_token(runtime.sessions.keys, shop.manager["Authorization"][7:])
    async with runtime.db.transaction(shop.tenant.id, principal.subject) as session:
        ctx = await operations.open_context(session, principal, shop.restaurant.id, when)
        outcome = await operations.execute(
            ctx,
            shop.guest_id,
            CashierRequest.model_validate({"restaurant_id": str(shop.restaurant.id)} | request),
            uuid.uuid4().hex,
        )
    return outcome.dump()
