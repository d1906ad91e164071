from __future__ import annotations

import uuid
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from maxloyalty.integrations.webhooks.models import DeliveryStatus
from maxloyalty.kit.timestamps import Timestamp

EVENT_TYPES_HELP = "Empty: every event; else names from GET /api/webhooks/event-types"


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000)
    event_types: list[str] = Field(default=[], max_length=50, description=EVENT_TYPES_HELP)
    description: str | None = Field(default=None, max_length=500)


class EndpointPatch(BaseModel):
    """The fields to change; `description: null` clears it."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=8, max_length=2000)
    event_types: list[str] | None = Field(default=None, max_length=50, description=EVENT_TYPES_HELP)
    description: str | None = Field(default=None, max_length=500)
    is_active: bool | None = Field(default=None, description="true resumes a disabled endpoint")

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        for name in ("url", "event_types", "is_active"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_hours: int = Field(
        default=24, ge=0, le=168, description="How long the old secret signs too; 0: not at all"
    )


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    is_active: bool
    disabled_reason: str | None
    previous_secret_expires_at: Timestamp | None
    created_at: Timestamp


class EndpointCreated(EndpointOut):
    secret: str = Field(description="whsec_…: shown once; verify our signatures with it")


class EventTypeOut(BaseModel):
    type: str
    description: str


class DeliveryOut(BaseModel):
    """One HTTP attempt (a row of the webhook log)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    delivery_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int | None
    succeeded: bool
    next_attempt_at: Timestamp | None
    created_at: Timestamp


class RedeliveryOut(BaseModel):
    """The event's delivery, queued again."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: DeliveryStatus
    attempts: int
