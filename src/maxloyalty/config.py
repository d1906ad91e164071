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
GENERATED_SECRETS = ("secret_key", "app_db_password", "platform_db_password")


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
    db_pool_size: int = 10

    secret_key: SecretStr | None = None
    app_db_password: SecretStr | None = None
    platform_db_password: SecretStr | None = None

    default_timezone: str = "Europe/Moscow"
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"

    rate_limit_default: str = "120/minute"
    rate_limit_login: str = "10/minute"

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
