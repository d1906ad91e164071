"""The guest's chat with the network's bot is theirs: in their data export, gone on erasure."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from maxloyalty.integrations.telegram.models import TelegramChat
from maxloyalty.runtime import Runtime
from tests.factories import bearer
from tests.identity.test_primitives import signed_init_data
from tests.integrations.telegram.conftest import GUEST_ID, Network, message, post_update
from tests.integrations.telegram.fake_bot_api import TOKEN


async def test_export_shows_the_chat_and_erasure_removes_it(
    client: httpx.AsyncClient, runtime: Runtime, connected: Network
) -> None:
    await post_update(client, connected, message("/start ref_FRIEND"))
    signed_in = await client.post(
        "/api/auth/telegram",
        json={
            "init_data": signed_init_data(TOKEN, user_id=GUEST_ID),
            "tenant_id": str(connected.tenant.id),
        },
    )
    headers = bearer(signed_in.json())

    exported = await client.get("/api/me/data", headers=headers)
    assert exported.status_code == 200, exported.text
    [chat] = exported.json()["networks"][0]["telegram_chats"]
    assert (chat["telegram_user_id"], chat["referral_code"]) == (GUEST_ID, "FRIEND")

    erased = await client.post("/api/me/erase", json={}, headers=headers)
    assert erased.status_code == 204, erased.text
    async with runtime.db.transaction(connected.tenant.id) as session:
        assert list(await session.scalars(select(TelegramChat))) == []
