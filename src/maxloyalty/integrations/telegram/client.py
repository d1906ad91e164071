"""aiogram bots pointed at the configured Bot API, and sending that never fails a request.

Every bot retries a 429 after the `retry_after` Telegram names, a few times and only for
short waits (a webhook answer must not hang). What is sent to a guest goes through
`deliver`: a guest who blocked the bot (403) is noted and skipped, and any other refusal is
logged, so a chat message never turns into an error of ours. Logs name the method and the
network, never a chat, a phone or a name.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

from maxloyalty.config import Settings

log = structlog.get_logger(__name__)

# Attempts at a call Telegram answers 429, while it asks to wait no longer than MAX_RETRY_AFTER.
RETRY_ATTEMPTS = 3
MAX_RETRY_AFTER = 10
# Seconds a Bot API call may take.
TIMEOUT = 15


class RetryAfter(BaseRequestMiddleware):
    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        for attempt in range(1, RETRY_ATTEMPTS):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if exc.retry_after > MAX_RETRY_AFTER:
                    raise
                log.info(
                    "telegram.retry_after",
                    method=method.__api_method__,
                    retry_after=exc.retry_after,
                    attempt=attempt,
                )
                await asyncio.sleep(exc.retry_after)
        return await make_request(bot, method)  # the last attempt: a 429 now is final


def make_bot(settings: Settings, token: str) -> Bot:
    """A bot on the configured Bot API; close it with `await bot.session.close()`.

    Raises aiogram's TokenValidationError for a token of the wrong shape."""
    session = AiohttpSession(
        api=TelegramAPIServer.from_base(settings.telegram_api_url.rstrip("/")), timeout=TIMEOUT
    )
    session.middleware(RetryAfter())
    return Bot(token, session=session)


@asynccontextmanager
async def open_bot(settings: Settings, token: str) -> AsyncIterator[Bot]:
    bot = make_bot(settings, token)
    try:
        yield bot
    finally:
        await bot.session.close()


class Delivery(enum.Enum):
    SENT = "sent"
    BLOCKED = "blocked"  # Telegram's 403: the guest blocked the bot
    FAILED = "failed"


async def deliver(bot: Bot, method: TelegramMethod[Any], *, tenant: str) -> Delivery:
    """Send `method`; a refusal or an unreachable Telegram is logged and swallowed."""
    try:
        await bot(method)
    except TelegramForbiddenError:
        log.warning("telegram.chat_blocked", method=method.__api_method__, tenant=tenant)
        return Delivery.BLOCKED
    except AiogramError as exc:
        # The description may quote what we sent (and a network error the URL, which holds
        # the token): the class says enough.
        log.warning(
            "telegram.send_failed",
            method=method.__api_method__,
            tenant=tenant,
            error=type(exc).__name__,
        )
        return Delivery.FAILED
    return Delivery.SENT
