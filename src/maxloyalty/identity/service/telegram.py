"""Telegram Mini App `initData` validation (core.telegram.org/bots/webapps), by aiogram.

aiogram checks the signature (HMAC-SHA256 under a key derived from the bot token with
"WebAppData") and parses the fields; freshness is ours to check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiogram.utils.web_app import check_webapp_signature, parse_webapp_init_data
from pydantic import ValidationError

from maxloyalty.identity.errors import InvalidInitData
from maxloyalty.kit.clock import utcnow


@dataclass(frozen=True)
class TelegramUser:
    id: int
    first_name: str | None
    last_name: str | None
    username: str | None
    language_code: str | None
    auth_date: datetime


def _signed(bot_token: str, init_data: str) -> bool:
    try:
        return check_webapp_signature(bot_token, init_data)
    except (TypeError, ValueError):
        # Not a query string, or a hash that is not ASCII (compare_digest refuses it).
        return False


def validate_init_data(bot_token: str, init_data: str, max_age: timedelta) -> TelegramUser:
    if not _signed(bot_token, init_data):
        raise InvalidInitData("initData signature does not match.")
    try:
        data = parse_webapp_init_data(init_data)
    except (ValidationError, ValueError) as exc:
        raise InvalidInitData("initData lacks auth_date or user.") from exc
    user = data.user
    if user is None:
        raise InvalidInitData("initData lacks auth_date or user.")
    auth_date = data.auth_date.astimezone(UTC)
    if utcnow() - auth_date > max_age:
        raise InvalidInitData("initData is too old; reopen the Mini App.")
    return TelegramUser(
        id=user.id,
        first_name=user.first_name,
        last_name=user.last_name,
        username=user.username,
        language_code=user.language_code,
        auth_date=auth_date,
    )
