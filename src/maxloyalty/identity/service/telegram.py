"""Telegram Mini App `initData` validation (core.telegram.org/bots/webapps).

secret = HMAC_SHA256(key="WebAppData", msg=bot_token); the data check string is every
field but `hash`, sorted by key, as `key=value` lines; the data is genuine when
hex(HMAC_SHA256(key=secret, msg=check_string)) equals `hash`. Freshness is ours to check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

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


def _invalid(detail: str) -> InvalidInitData:
    return InvalidInitData(detail)


def validate_init_data(bot_token: str, init_data: str, max_age: timedelta) -> TelegramUser:
    try:
        fields = dict(parse_qsl(init_data, keep_blank_values=True, strict_parsing=True))
    except ValueError as exc:
        raise _invalid("initData is not a query string.") from exc
    received = fields.pop("hash", "")
    check_string = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    expected = hmac.new(secret, check_string.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), received.encode()):
        raise _invalid("initData signature does not match.")
    try:
        auth_date = datetime.fromtimestamp(int(fields["auth_date"]), UTC)
        user = json.loads(fields["user"])
        user_id = int(user["id"])
    except (KeyError, ValueError, TypeError) as exc:
        raise _invalid("initData lacks auth_date or user.") from exc
    if utcnow() - auth_date > max_age:
        raise _invalid("initData is too old; reopen the Mini App.")
    return TelegramUser(
        id=user_id,
        first_name=user.get("first_name"),
        last_name=user.get("last_name"),
        username=user.get("username"),
        language_code=user.get("language_code"),
        auth_date=auth_date,
    )
