"""Settings: development secrets are generated once and kept out of the repository."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest
import structlog
from pydantic import ValidationError

from maxloyalty.config import GENERATED_SECRETS, Settings
from maxloyalty.kit.logging import configure_logging


def test_secrets_are_generated_once_and_reused(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).with_generated_secrets()
    second = Settings(data_dir=tmp_path).with_generated_secrets()
    for name in GENERATED_SECRETS:
        assert first.secret(name) == second.secret(name)
        assert len(first.secret(name)) >= 40
    stored = tmp_path / "secrets.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert set(json.loads(stored.read_text())) == set(GENERATED_SECRETS)


def test_configured_secret_wins_over_file(tmp_path: Path) -> None:
    Settings(data_dir=tmp_path).with_generated_secrets()
    configured = Settings(data_dir=tmp_path, secret_key="from-env").with_generated_secrets()
    assert configured.secret("secret_key") == "from-env"


def test_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("REDIS_URL", "redis://h:6379/1")
    monkeypatch.setenv("MAXLOYALTY_LOG_FORMAT", "console")
    monkeypatch.setenv("MAXLOYALTY_DB_POOL_TIMEOUT", "2.5")
    settings = Settings(data_dir=tmp_path)
    assert settings.database_url == "postgresql://u@h/db"
    assert settings.redis_url == "redis://h:6379/1"
    assert settings.log_format == "console"
    assert settings.db_pool_timeout == 2.5


def test_pool_timeout_must_be_positive(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).db_pool_timeout == 10
    with pytest.raises(ValidationError, match="greater than 0"):
        Settings(data_dir=tmp_path, db_pool_timeout=0)


def test_unknown_time_zone_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="IANA"):
        Settings(data_dir=tmp_path, default_timezone="Moscow/Kremlin")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_logs_keep_russian_text_readable(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(fmt, "INFO")
    try:
        structlog.get_logger("test").info("sms_sent", text="Гриль Хаус: код входа")
        logging.getLogger("library").warning("Привет из библиотеки")
    finally:  # the rest of the suite keeps its own logging
        structlog.configure(**saved)
        root.handlers[:], root.level = handlers, level
    err = capsys.readouterr().err
    assert "Гриль Хаус: код входа" in err
    assert "Привет из библиотеки" in err
    assert "\\u04" not in err
