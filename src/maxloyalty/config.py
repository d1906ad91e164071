"""Settings, read from the environment (and `.env`), with development secrets kept on disk."""

from __future__ import annotations

import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Secrets that a development installation generates on first run; production sets them.
GENERATED_SECRETS = (
    "secret_key",
    "pii_key",
    "blind_index_key",
    "app_db_password",
    "platform_db_password",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MAXLOYALTY_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "MAXLOYALTY_DATABASE_URL")
    )
    app_database_url: str | None = None
    platform_database_url: str | None = None
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "MAXLOYALTY_REDIS_URL")
    )
    data_dir: Path = Path(".data")
    redis_key_prefix: str = Field(default="ml", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    db_pool_size: int = 10
    db_pool_timeout: float = Field(default=10, gt=0)  # seconds a request waits for a connection

    secret_key: SecretStr | None = None
    previous_secret_keys: list[SecretStr] = []
    pii_key: SecretStr | None = None
    previous_pii_keys: list[SecretStr] = []
    blind_index_key: SecretStr | None = None
    app_db_password: SecretStr | None = None
    platform_db_password: SecretStr | None = None

    default_timezone: str = "Europe/Moscow"
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"

    rate_limit_default: str = "120/minute"
    rate_limit_login: str = "10/minute"
    rate_limit_login_failures: str = "5 per 15 minutes"
    rate_limit_identify: str = "60/minute"
    rate_limit_identify_tenant: str = "600/minute"
    rate_limit_friend_lookup: str = "10/hour"  # a guest naming a friend's card by its code

    access_token_minutes: int = Field(default=15, ge=1, le=7 * 24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)

    otp_ttl_seconds: int = Field(default=300, ge=60, le=600)
    otp_max_attempts: int = Field(default=5, ge=1, le=10)
    otp_resend_seconds: int = Field(default=60, ge=10)
    rate_limit_otp_phone: str = "5/hour"
    rate_limit_otp_ip: str = "20/hour"

    sms_provider: Literal["console", "smsru", "smsc", "twilio"] = "console"
    smsru_api_id: SecretStr | None = None
    smsc_login: str | None = None
    smsc_password: SecretStr | None = None
    smsc_apikey: SecretStr | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    sms_base_url: str | None = None

    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Where tills' vendors reach us (iiko webhooks)"
    )
    webhooks_allow_private: bool = False
    webhook_retry_schedule: list[int] = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]

    telegram_bot_token: SecretStr | None = None
    telegram_init_data_max_age: int = Field(default=86400, ge=60)
    # The Bot API's address: a local Bot API server, or a fake one in tests.
    telegram_api_url: str = "https://api.telegram.org"

    run_worker_in_process: bool = True

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone: {value}") from exc
        return value

    def secret(self, name: str) -> str:
        value = getattr(self, name)
        if value is None:
            raise RuntimeError(f"secret {name} is not configured")
        return str(value.get_secret_value())

    def with_generated_secrets(self) -> Settings:
        """Fill unset secrets from `<data_dir>/secrets.json`, creating it on first run."""
        missing = [name for name in GENERATED_SECRETS if getattr(self, name) is None]
        if not missing:
            return self
        path = self.data_dir / "secrets.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        if any(name not in stored for name in missing):
            for name in missing:
                stored.setdefault(name, secrets.token_urlsafe(32))
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(json.dumps(stored, indent=2))
        return self.model_copy(update={name: SecretStr(stored[name]) for name in missing})


@lru_cache
def get_settings() -> Settings:
    return Settings().with_generated_secrets()
