"""The network's Telegram bot: connect, status, disconnect (the tenant admin), and the
webhook Telegram posts updates to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status

from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, TenantAdmin
from maxloyalty.identity.dependencies import PublicSession, TenantSession
from maxloyalty.integrations.telegram.errors import (
    TelegramBotNotFound,
    TelegramBotTaken,
    TelegramSecretInvalid,
    TelegramTokenInvalid,
    TelegramUnavailable,
)
from maxloyalty.integrations.telegram.schemas import BotConnect, BotStatus
from maxloyalty.integrations.telegram.service import bots, updates
from maxloyalty.kit.errors import MalformedJson, PayloadTooLarge, problem_responses
from maxloyalty.kit.http import read_limited
from maxloyalty.runtime import runtime_of

router = APIRouter(tags=["telegram"])
admin = APIRouter(responses=problem_responses(*SIGNED_IN_REFUSALS))
MAX_UPDATE = 1 << 20
UPDATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
        "description": "A Telegram Update (core.telegram.org/bots/api#update)",
    }
}


@admin.post(
    "/api/telegram/bot",
    responses=problem_responses(TelegramTokenInvalid, TelegramUnavailable, TelegramBotTaken),
)
async def connect_bot(
    body: BotConnect, principal: TenantAdmin, session: TenantSession, request: Request
) -> BotStatus:
    """Connect the network's bot: its token is checked with Telegram (getMe) and kept
    encrypted; its webhook and chat menu button are pointed at this platform. A bot
    connected before is replaced."""
    assert principal.tenant_id is not None
    return await bots.connect(
        session,
        runtime_of(request).settings,
        principal.tenant_id,
        body.token.get_secret_value(),
        by=principal.subject,
    )


@admin.get("/api/telegram/bot", responses=problem_responses(TelegramBotNotFound))
async def bot_status(principal: TenantAdmin, session: TenantSession, request: Request) -> BotStatus:
    assert principal.tenant_id is not None
    return await bots.status(session, runtime_of(request).settings, principal.tenant_id)


@admin.delete(
    "/api/telegram/bot",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(TelegramBotNotFound),
)
async def disconnect_bot(_admin: TenantAdmin, session: TenantSession, request: Request) -> Response:
    """Delete the bot's webhook and forget the bot."""
    await bots.disconnect(session, runtime_of(request).settings)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/telegram/{tenant_slug}/webhook",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(TelegramSecretInvalid, PayloadTooLarge, MalformedJson),
    openapi_extra=UPDATE_BODY,
)
async def telegram_webhook(
    tenant_slug: str,
    request: Request,
    session: PublicSession,
    secret: Annotated[str | None, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = None,
) -> Response:
    """Telegram's updates for the network's bot, with the secret registered by setWebhook.
    Answers go out through the Bot API; anything a guest writes gets an answer, never an
    error."""
    tenant, row = await bots.webhook_caller(session, tenant_slug, secret)
    body = await read_limited(request, MAX_UPDATE)
    await updates.receive(session, runtime_of(request).settings, tenant, row, body)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


router.include_router(admin)
