"""Connecting a network's bot: check the token, keep it encrypted, point its webhook and its
menu button at us; the bot's status; forgetting it; finding it again for an update."""

from __future__ import annotations

import hmac
import secrets
import uuid

import structlog
from aiogram import Bot
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramNotFound,
    TelegramUnauthorizedError,
)
from aiogram.types import MenuButtonWebApp, WebAppInfo
from aiogram.utils.token import TokenValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.config import Settings
from maxloyalty.integrations.telegram.client import open_bot
from maxloyalty.integrations.telegram.errors import (
    TelegramBotNotFound,
    TelegramBotTaken,
    TelegramSecretInvalid,
    TelegramTokenInvalid,
    TelegramUnavailable,
)
from maxloyalty.integrations.telegram.models import TelegramBot
from maxloyalty.integrations.telegram.schemas import BotStatus
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import violated_constraint
from maxloyalty.network.errors import TenantNotFound
from maxloyalty.network.models import Tenant
from maxloyalty.network.service.directory import tenant_by_slug

log = structlog.get_logger(__name__)

ALLOWED_UPDATES = ["message"]
MENU_BUTTON_TEXT = "Моя карта"
_SETUP_ERROR_LENGTH = 500


def webhook_url(settings: Settings, tenant_slug: str) -> str:
    return f"{settings.public_url.rstrip('/')}/api/telegram/{tenant_slug}/webhook"


def mini_app_url(settings: Settings, tenant_slug: str) -> str:
    return f"{settings.public_url.rstrip('/')}/app/{tenant_slug}"


async def bot_of(session: AsyncSession) -> TelegramBot | None:
    """The bot of the session's tenant."""
    bot: TelegramBot | None = await session.scalar(select(TelegramBot))
    return bot


async def tenant_bot_token(session: AsyncSession, tenant_id: uuid.UUID) -> str | None:
    """The lookup guests' Mini App sign-in uses (installed in `app.create_app`)."""
    token: str | None = await session.scalar(
        select(TelegramBot.token).where(TelegramBot.tenant_id == tenant_id)
    )
    return token


def status_of(settings: Settings, tenant: Tenant, bot: TelegramBot) -> BotStatus:
    return BotStatus(
        bot_id=bot.bot_id,
        username=bot.username,
        connected_at=bot.connected_at,
        webhook_set=bot.webhook_url is not None,
        webhook_url=bot.webhook_url,
        menu_button_set=bot.menu_button_set,
        setup_error=bot.setup_error,
        mini_app_url=mini_app_url(settings, tenant.slug),
    )


async def _tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None  # the caller's own tenant
    return tenant


async def status(session: AsyncSession, settings: Settings, tenant_id: uuid.UUID) -> BotStatus:
    bot = await bot_of(session)
    if bot is None:
        raise TelegramBotNotFound()
    return status_of(settings, await _tenant(session, tenant_id), bot)


def _refusal(exc: TelegramAPIError) -> str:
    return f"{exc.method.__api_method__}: {exc.message}"[:_SETUP_ERROR_LENGTH]


async def _point_at_us(settings: Settings, api: Bot, row: TelegramBot, tenant_slug: str) -> None:
    """Register the webhook and the menu button. Telegram refuses plain-http addresses (a
    development installation): the bot is connected all the same, the refusal kept in
    `setup_error`, and `maxloyalty telegram poll` fetches its updates instead."""
    errors: list[str] = []
    url = webhook_url(settings, tenant_slug)
    try:
        await api.set_webhook(url, secret_token=row.webhook_secret, allowed_updates=ALLOWED_UPDATES)
        row.webhook_url = url
    except TelegramAPIError as exc:
        row.webhook_url = None
        errors.append(_refusal(exc))
    try:
        await api.set_chat_menu_button(
            menu_button=MenuButtonWebApp(
                text=MENU_BUTTON_TEXT, web_app=WebAppInfo(url=mini_app_url(settings, tenant_slug))
            )
        )
        row.menu_button_set = True
    except TelegramAPIError as exc:
        row.menu_button_set = False
        errors.append(_refusal(exc))
    row.setup_error = "; ".join(errors)[:_SETUP_ERROR_LENGTH] or None


async def connect(
    session: AsyncSession,
    settings: Settings,
    tenant_id: uuid.UUID,
    token: str,
    *,
    by: uuid.UUID | None = None,
) -> BotStatus:
    """Check the token with getMe, keep the bot (replacing one connected before) and point
    it at this platform."""
    tenant = await _tenant(session, tenant_id)
    try:
        async with open_bot(settings, token) as api:
            me = await api.get_me()
            row = await bot_of(session)
            previous_token = row.token if row is not None else None
            if row is None:
                row = TelegramBot(tenant_id=tenant_id)
                session.add(row)
            before = {"bot_id": row.bot_id, "username": row.username} if previous_token else None
            row.bot_id = me.id
            row.username = me.username or str(me.id)
            row.token = token
            row.webhook_secret = secrets.token_urlsafe(32)  # Telegram's alphabet: A-Z a-z 0-9 _ -
            row.connected_at = utcnow()
            row.connected_by_user_id = by
            try:
                async with session.begin_nested():
                    await session.flush()
            except IntegrityError as exc:
                if violated_constraint(exc) == "uq_telegram_bots_bot_id":
                    raise TelegramBotTaken() from exc
                raise
            await _point_at_us(settings, api, row, tenant.slug)
    except TokenValidationError as exc:
        raise TelegramTokenInvalid() from exc
    except (TelegramUnauthorizedError, TelegramNotFound) as exc:
        # 401 for a revoked or made-up token; 404 for one Telegram cannot even route.
        raise TelegramTokenInvalid() from exc
    except AiogramError as exc:
        log.warning("telegram.unavailable", method="getMe", error=type(exc).__name__)
        raise TelegramUnavailable() from exc
    if previous_token is not None and previous_token != token:
        await _release(settings, previous_token)
    await session.flush()
    await record(
        session,
        "telegram.bot_connected",
        "telegram_bot",
        row.id,
        before=before,
        after={
            "bot_id": row.bot_id,
            "username": row.username,
            "webhook_set": row.webhook_url is not None,
            "menu_button_set": row.menu_button_set,
        },
    )
    return status_of(settings, tenant, row)


async def _release(settings: Settings, token: str) -> None:
    """Tell a bot we no longer take its updates; best effort (it may be revoked already)."""
    try:
        async with open_bot(settings, token) as api:
            await api.delete_webhook()
    except (AiogramError, TokenValidationError) as exc:
        log.info("telegram.delete_webhook_failed", error=type(exc).__name__)


async def disconnect(session: AsyncSession, settings: Settings) -> None:
    """Forget the network's bot after deleting its webhook (if Telegram lets us: a bot whose
    token was revoked is forgotten all the same)."""
    row = await bot_of(session)
    if row is None:
        raise TelegramBotNotFound()
    await _release(settings, row.token)
    await session.delete(row)
    await session.flush()
    await record(
        session,
        "telegram.bot_disconnected",
        "telegram_bot",
        row.id,
        before={"bot_id": row.bot_id, "username": row.username},
    )


async def polling(session: AsyncSession, row: TelegramBot) -> None:
    """The bot's updates are fetched by `maxloyalty telegram poll`: its webhook is gone."""
    row.webhook_url = None
    await session.flush()
    await record(session, "telegram.polling_started", "telegram_bot", row.id)


# --- an update arrives --------------------------------------------------------------------


async def tenant_of_slug(session: AsyncSession, slug: str) -> Tenant | None:
    """The network by its public slug, `session` bound to it (network.service.directory)."""
    try:
        found = await tenant_by_slug(session, slug)
    except TenantNotFound:
        return None
    return await session.get(Tenant, found.id)


async def webhook_caller(
    session: AsyncSession, tenant_slug: str, secret: str | None
) -> tuple[Tenant, TelegramBot]:
    """The network and bot an update is for, when it carries the secret we registered; any
    other caller learns nothing (not even whether the network or its bot exists)."""
    tenant = await tenant_of_slug(session, tenant_slug)
    row = await bot_of(session) if tenant is not None else None
    given = (secret or "").encode("utf-8", "surrogateescape")
    expected = row.webhook_secret.encode() if row is not None else secrets.token_bytes(32)
    if not hmac.compare_digest(given, expected) or tenant is None or row is None:
        raise TelegramSecretInvalid()
    return tenant, row
