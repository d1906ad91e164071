"""Updates from Telegram, by webhook or by long polling, handed to the bot's handlers."""

from __future__ import annotations

import asyncio

import structlog
from aiogram.exceptions import AiogramError, TelegramUnauthorizedError
from aiogram.types import Update
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.config import Settings
from maxloyalty.integrations.telegram.bot import handle_update
from maxloyalty.integrations.telegram.client import open_bot
from maxloyalty.integrations.telegram.errors import TelegramBotNotFound, TelegramTokenInvalid
from maxloyalty.integrations.telegram.models import TelegramBot
from maxloyalty.integrations.telegram.service import bots
from maxloyalty.kit.errors import MalformedJson
from maxloyalty.network.errors import TenantNotFound
from maxloyalty.network.models import Tenant
from maxloyalty.runtime import Runtime

log = structlog.get_logger(__name__)

# Seconds getUpdates waits for an update before it answers an empty list.
POLL_TIMEOUT = 25
# Pause after Telegram failed to answer getUpdates, before asking again.
POLL_BACKOFF = 3


async def receive(
    session: AsyncSession, settings: Settings, tenant: Tenant, row: TelegramBot, body: bytes
) -> None:
    """One update from the webhook, in the request's transaction."""
    async with open_bot(settings, row.token) as api:
        try:
            update = Update.model_validate_json(body, context={"bot": api})
        except ValidationError as exc:
            raise MalformedJson("The body is not a Telegram update.") from exc
        await handle_update(session, settings, tenant, api, update)


async def poll(runtime: Runtime, tenant_slug: str, *, stop: asyncio.Event | None = None) -> None:
    """Long polling for development: delete the webhook, then fetch updates and handle each
    in its own transaction, until `stop` is set. Telegram out of reach is waited out."""
    settings, stop = runtime.settings, stop or asyncio.Event()
    async with runtime.db.transaction() as session:
        tenant = await bots.tenant_of_slug(session, tenant_slug)
        if tenant is None:
            raise TenantNotFound(f"No tenant with slug {tenant_slug!r}.")
        row = await bots.bot_of(session)
        if row is None:
            raise TelegramBotNotFound()
        tenant_id, token = tenant.id, row.token
        await bots.polling(session, row)
    async with open_bot(settings, token) as api:
        try:
            await api.delete_webhook()
        except TelegramUnauthorizedError as exc:
            raise TelegramTokenInvalid() from exc
        offset: int | None = None
        while not stop.is_set():
            try:
                updates = await api.get_updates(
                    offset=offset, timeout=POLL_TIMEOUT, allowed_updates=bots.ALLOWED_UPDATES
                )
            except TelegramUnauthorizedError as exc:
                raise TelegramTokenInvalid() from exc
            except AiogramError as exc:
                log.warning("telegram.poll_failed", error=type(exc).__name__)
                await asyncio.sleep(POLL_BACKOFF)
                continue
            for update in updates:
                offset = update.update_id + 1
                try:
                    async with runtime.db.transaction(tenant_id) as session:
                        current = await session.get(Tenant, tenant_id)
                        assert current is not None
                        await handle_update(session, settings, current, api, update)
                except Exception as exc:
                    # One update that fails is skipped (rolled back), not fetched forever.
                    log.error(
                        "telegram.update_failed",
                        update_id=update.update_id,
                        error=type(exc).__name__,
                    )
