from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from maxloyalty.guests.models import GuestCard
from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
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
