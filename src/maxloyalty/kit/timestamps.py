"""One time format in every answer: RFC 3339 in UTC with `Z` and milliseconds.

`Timestamp` is the type of every moment a response model carries; `rfc3339` is the same
rendering for the answers built by hand (stored replays, event payloads, exports)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

# In the OpenAPI document too, so clients (and the test that walks it) know the exact shape.
PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"


def rfc3339(moment: datetime) -> str:
    """`2026-12-03T09:15:00.123Z`. A naive moment is taken as UTC (the database's)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339_or_none(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment is not None else None


Timestamp = Annotated[
    datetime,
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": PATTERN}, mode="serialization"
    ),
]
