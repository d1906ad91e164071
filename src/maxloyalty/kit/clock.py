"""The one clock of the application, so tests can freeze time in one place."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
