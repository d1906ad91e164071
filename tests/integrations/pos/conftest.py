from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from maxloyalty.guests.models import GuestCard
from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_guest
from tests.ledger import conftest as ledger_fixtures
from tests.ledger.conftest import Shop

# The ledger tests' fixtures, shared here.
make_shop = ledger_fixtures.make_shop
in_a_window = ledger_fixtures.in_a_window


@dataclass
class Till:
    """A shop whose restaurant has a POS integration, and the till's headers."""

    shop: Shop
    integration: dict[str, Any]
    admin: dict[str, str]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.integration['api_key']}"}

    @property
    def client(self) -> httpx.AsyncClient:
        return self.shop.client

    async def call(
        self, path: str, body: dict[str, Any] | None = None, key: str | None = None
    ) -> httpx.Response:
        headers = self.headers | ({"Idempotency-Key": key} if key else {})
        return await self.client.post(f"/api/pos/v1{path}", json=body or {}, headers=headers)

    async def guest(self, runtime: Runtime, phone: str | None = None) -> GuestCard:
        """Another member of the till's network, registered at its restaurant."""
        return await make_guest(
            runtime, self.shop.system, phone=phone, restaurant_id=self.shop.restaurant.id
        )

    async def credit(self, points: int) -> None:
        answer = await self.shop.client.post(
            f"/api/guest/{self.shop.guest_id}/transaction",
            json={
                "type": "MANUAL",
                "restaurant_id": str(self.shop.restaurant.id),
                "points": points,
                "reason": "test balance",
            },
            headers=self.shop.manager | {"Idempotency-Key": uuid.uuid4().hex},
        )
        assert answer.status_code == 201, answer.text


TillFactory = Callable[..., Awaitable[Till]]


@pytest.fixture
def make_till(request: pytest.FixtureRequest, auth: TokenFactory, runtime: Runtime) -> TillFactory:
    shops: Callable[..., Awaitable[Shop]] = request.getfixturevalue("make_shop")

    async def build(
        system: str = "CUSTOM",
        program: str = "POINTS",
        program_settings: dict[str, object] | None = None,
        **fields: Any,
    ) -> Till:
        """A till of a new network whose programme is of kind `program` (with
        `program_settings`, e.g. levels or mode); `fields` go into the integration."""
        shop = await shops(program, **(program_settings or {}))
        async with runtime.db.transaction() as session:
            person = User(role=Role.RESTAURANT_ADMIN)
            session.add(person)
        admin = await auth(Role.RESTAURANT_ADMIN, shop.tenant.id, subject=person.id)
        created = await shop.client.post(
            "/api/pos/integrations",
            json={
                "restaurant_id": str(shop.restaurant.id),
                "system": system,
                "name": f"{system} till",
            }
            | fields,
            headers=admin,
        )
        assert created.status_code == 201, created.text
        return Till(shop=shop, integration=created.json(), admin=admin)

    return build
