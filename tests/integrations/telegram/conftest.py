"""A network with a programme and a restaurant, its admin, and a fake Bot API the running
app talks to (`MAXLOYALTY_TELEGRAM_API_URL` pointed at it)."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from maxloyalty.identity.principal import Role
from maxloyalty.loyalty.models import LoyaltySystem
from maxloyalty.network.models import Restaurant, Tenant
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_program, make_restaurant, make_tenant
from tests.integrations.telegram.fake_bot_api import TOKEN, FakeBotApi


@pytest.fixture
async def bot_api(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        monkeypatch.setattr(runtime.settings, "telegram_api_url", fake.url)
        yield fake


@dataclass
class Network:
    tenant: Tenant
    system: LoyaltySystem
    restaurant: Restaurant
    admin: dict[str, str]
    secret: str = ""


@pytest.fixture
async def network(runtime: Runtime, auth: TokenFactory) -> Network:
    tenant = await make_tenant(runtime, name="Гриль Хаус")
    system = await make_program(runtime, tenant)
    restaurant = await make_restaurant(runtime, tenant)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    return Network(tenant, system, restaurant, admin)


async def connect(
    client: httpx.AsyncClient, network: Network, token: str = TOKEN
) -> httpx.Response:
    return await client.post("/api/telegram/bot", json={"token": token}, headers=network.admin)


@pytest.fixture
async def connected(client: httpx.AsyncClient, network: Network, bot_api: FakeBotApi) -> Network:
    """The network with its bot connected; `secret` is what setWebhook registered."""
    answer = await connect(client, network)
    assert answer.status_code == 200, answer.text
    [call] = bot_api.calls("setWebhook")
    network.secret = call.fields["secret_token"]
    bot_api.requests.clear()
    return network


_update_ids = itertools.count(1000)
GUEST_ID = 555000111


def message(
    text: str | None = None,
    *,
    sender: int = GUEST_ID,
    language: str = "ru",
    contact: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An update with a private message, as Telegram sends it."""
    body: dict[str, Any] = {
        "message_id": next(_update_ids),
        "date": int(time.time()),
        "chat": {"id": sender, "type": "private", "first_name": "Иван"},
        "from": {"id": sender, "is_bot": False, "first_name": "Иван", "language_code": language},
    }
    if text is not None:
        body["text"] = text
        if text.startswith("/"):
            command = text.split()[0]
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    if contact is not None:
        body["contact"] = contact
    return {"update_id": next(_update_ids), "message": body}


async def post_update(
    client: httpx.AsyncClient,
    network: Network,
    update: dict[str, Any],
    secret: str | bytes | None = None,
) -> httpx.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": network.secret if secret is None else secret}
    return await client.post(
        f"/api/telegram/{network.tenant.slug}/webhook", json=update, headers=headers
    )
