"""Connecting a network's bot: the token checked with getMe and kept encrypted, the webhook
and menu button pointed at us, the status, forgetting the bot."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.audit.models import ActivityLog
from maxloyalty.identity.principal import Role
from maxloyalty.integrations.telegram.models import TelegramBot
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_tenant
from tests.integrations.fake_http import unused_url
from tests.integrations.telegram.conftest import Network, connect
from tests.integrations.telegram.fake_bot_api import (
    BOT_ID,
    TOKEN,
    USERNAME,
    FakeBotApi,
    refusal,
)
from tests.test_app import assert_problem


async def test_connect_checks_the_token_and_points_the_bot_at_us(
    client: httpx.AsyncClient,
    runtime: Runtime,
    network: Network,
    bot_api: FakeBotApi,
    owner_engine: AsyncEngine,
) -> None:
    answer = await connect(client, network)

    assert answer.status_code == 200, answer.text
    slug, public = network.tenant.slug, runtime.settings.public_url
    status = answer.json()
    assert status == {
        "bot_id": BOT_ID,
        "username": USERNAME,
        "connected_at": status["connected_at"],
        "webhook_set": True,
        "webhook_url": f"{public}/api/telegram/{slug}/webhook",
        "menu_button_set": True,
        "setup_error": None,
        "mini_app_url": f"{public}/app/{slug}",
    }
    assert TOKEN not in answer.text
    assert [c.method for c in bot_api.calls()] == ["getMe", "setWebhook", "setChatMenuButton"]
    assert {c.token for c in bot_api.calls()} == {TOKEN}
    webhook = bot_api.calls("setWebhook")[0].fields
    assert webhook["url"] == f"{public}/api/telegram/{slug}/webhook"
    assert webhook["allowed_updates"] == ["message"]
    secret = webhook["secret_token"]
    assert len(secret) >= 32
    assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    menu = bot_api.calls("setChatMenuButton")[0].fields["menu_button"]
    assert menu == {
        "type": "web_app",
        "text": "Моя карта",
        "web_app": {"url": f"{public}/app/{slug}"},
    }

    # Stored encrypted: neither the token nor the secret is in the table as it is.
    async with owner_engine.connect() as conn:
        raw = (await conn.execute(text("SELECT token, webhook_secret FROM telegram_bots"))).one()
    assert TOKEN not in raw.token
    assert secret not in raw.webhook_secret
    async with runtime.db.transaction(network.tenant.id) as session:
        row = await session.scalar(select(TelegramBot))
        assert row is not None
        assert (row.token, row.webhook_secret) == (TOKEN, secret)
        [entry] = await session.scalars(
            select(ActivityLog).where(ActivityLog.action == "telegram.bot_connected")
        )
    assert entry.after == {
        "bot_id": BOT_ID,
        "username": USERNAME,
        "webhook_set": True,
        "menu_button_set": True,
    }

    shown = await client.get("/api/telegram/bot", headers=network.admin)
    assert shown.json() == status
    assert TOKEN not in shown.text
    assert secret not in shown.text


async def test_a_token_telegram_refuses_is_422(
    client: httpx.AsyncClient, runtime: Runtime, network: Network, bot_api: FakeBotApi
) -> None:
    assert_problem(await connect(client, network, "999:WRONG"), 422, "telegram_token_invalid")
    assert_problem(await connect(client, network, "not a token"), 422, "telegram_token_invalid")
    assert [c.method for c in bot_api.calls()] == ["getMe"]  # the malformed one never left
    assert_problem(
        await client.get("/api/telegram/bot", headers=network.admin), 404, "telegram_bot_not_found"
    )


async def test_telegram_out_of_reach_is_503(
    client: httpx.AsyncClient,
    runtime: Runtime,
    network: Network,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime.settings, "telegram_api_url", unused_url())
    assert_problem(await connect(client, network), 503, "telegram_unavailable")


async def test_a_refused_webhook_leaves_the_bot_connected_for_polling(
    client: httpx.AsyncClient, network: Network, bot_api: FakeBotApi
) -> None:
    bot_api.plan["setWebhook"] = [
        refusal(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
    ]
    answer = await connect(client, network)
    assert answer.status_code == 200, answer.text
    assert answer.json()["webhook_set"] is False
    assert answer.json()["webhook_url"] is None
    assert answer.json()["menu_button_set"] is True
    assert "HTTPS URL must be provided" in answer.json()["setup_error"]


async def test_one_bot_serves_one_network(
    client: httpx.AsyncClient,
    runtime: Runtime,
    network: Network,
    bot_api: FakeBotApi,
    auth: TokenFactory,
) -> None:
    assert (await connect(client, network)).status_code == 200
    other = await make_tenant(runtime)
    headers = await auth(Role.RESTAURANT_ADMIN, other.id)
    answer = await client.post("/api/telegram/bot", json={"token": TOKEN}, headers=headers)
    assert_problem(answer, 409, "telegram_bot_taken")


async def test_disconnect_deletes_the_webhook_and_forgets_the_bot(
    client: httpx.AsyncClient, runtime: Runtime, network: Network, bot_api: FakeBotApi
) -> None:
    assert (await connect(client, network)).status_code == 200
    bot_api.requests.clear()

    answer = await client.delete("/api/telegram/bot", headers=network.admin)

    assert answer.status_code == 204
    assert [c.method for c in bot_api.calls()] == ["deleteWebhook"]
    assert_problem(
        await client.get("/api/telegram/bot", headers=network.admin), 404, "telegram_bot_not_found"
    )
    assert_problem(
        await client.delete("/api/telegram/bot", headers=network.admin),
        404,
        "telegram_bot_not_found",
    )
    async with runtime.db.transaction(network.tenant.id) as session:
        actions = list(await session.scalars(select(ActivityLog.action)))
    assert "telegram.bot_disconnected" in actions


async def test_a_new_token_replaces_the_bot_and_releases_the_old_one(
    client: httpx.AsyncClient, network: Network, bot_api: FakeBotApi
) -> None:
    assert (await connect(client, network)).status_code == 200
    new_token = "654321:BBNewTokenForTheSameNetwork"
    bot_api.bots[new_token] = {
        "id": 654321,
        "is_bot": True,
        "first_name": "Новый",
        "username": "new_bot",
    }
    bot_api.requests.clear()

    answer = await connect(client, network, new_token)

    assert answer.json()["username"] == "new_bot"
    assert [(c.method, c.token) for c in bot_api.calls()] == [
        ("getMe", new_token),
        ("setWebhook", new_token),
        ("setChatMenuButton", new_token),
        ("deleteWebhook", TOKEN),
    ]


async def test_only_the_admin_connects(
    client: httpx.AsyncClient, network: Network, auth: TokenFactory, bot_api: FakeBotApi
) -> None:
    manager = await auth(Role.MANAGER, network.tenant.id)
    answer = await client.post("/api/telegram/bot", json={"token": TOKEN}, headers=manager)
    assert_problem(answer, 403, "role_forbidden")
    assert bot_api.calls() == []
