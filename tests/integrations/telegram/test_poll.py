"""`maxloyalty telegram poll`: the webhook is deleted, then updates are fetched with
getUpdates and handled by the same handlers, each confirmed by the next offset."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from maxloyalty.integrations.telegram.errors import TelegramBotNotFound
from maxloyalty.integrations.telegram.models import TelegramBot, TelegramChat
from maxloyalty.integrations.telegram.service.updates import poll
from maxloyalty.network.errors import TenantNotFound
from maxloyalty.runtime import Runtime
from tests.integrations.telegram.conftest import GUEST_ID, Network, message
from tests.integrations.telegram.fake_bot_api import FakeBotApi


async def test_polling_handles_updates_like_the_webhook(
    runtime: Runtime, connected: Network, bot_api: FakeBotApi
) -> None:
    first, second = message("/start ref_POLL"), message("/balance")
    bot_api.updates = [[first], [second]]
    stop = asyncio.Event()
    task = asyncio.create_task(poll(runtime, connected.tenant.slug, stop=stop))
    async with asyncio.timeout(10):
        # The third getUpdates comes once both updates are handled (and confirms them).
        while len(bot_api.calls("getUpdates")) < 3:  # noqa: ASYNC110 - the fake sets no event
            await asyncio.sleep(0.05)
    stop.set()
    await task

    methods = [c.method for c in bot_api.calls()]
    assert methods[:2] == ["deleteWebhook", "getUpdates"]
    offsets = [c.fields.get("offset") for c in bot_api.calls("getUpdates")]
    assert offsets[:3] == [None, str(first["update_id"] + 1), str(second["update_id"] + 1)]
    assert bot_api.sent()[2]["text"].startswith("У вас ещё нет карты.")
    async with runtime.db.transaction(connected.tenant.id) as session:
        chat = await session.scalar(select(TelegramChat))
        bot = await session.scalar(select(TelegramBot))
    assert chat is not None
    assert (chat.telegram_user_id, chat.referral_code) == (GUEST_ID, "POLL")
    assert bot is not None
    assert bot.webhook_url is None  # the status says updates no longer come by webhook


async def test_polling_needs_a_network_with_a_bot(runtime: Runtime, network: Network) -> None:
    with pytest.raises(TenantNotFound):
        await poll(runtime, "no-such-network")
    with pytest.raises(TelegramBotNotFound):
        await poll(runtime, network.tenant.slug)


async def test_the_poll_command_says_what_is_missing(
    runtime: Runtime, network: Network, owner_url: str
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": owner_url,
        "MAXLOYALTY_DATA_DIR": str(runtime.settings.data_dir),
    }
    done = subprocess.run(  # noqa: ASYNC221, S603 - a real process, as a developer would run it
        [sys.executable, "-m", "maxloyalty", "telegram", "poll", "--tenant", network.tenant.slug],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "No Telegram bot is connected to this network." in done.stderr
