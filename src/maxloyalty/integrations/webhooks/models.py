from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.crypto import EncryptedText
from maxloyalty.kit.models import Base, TenantOwned, Timestamps, UUIDPrimaryKey


class WebhookEndpoint(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    """Where a tenant wants its events; `event_types` empty means all of them."""

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    secret: Mapped[str] = mapped_column(EncryptedText(300))
    description: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))


class WebhookDelivery(UUIDPrimaryKey, TenantOwned, Base):
    """One attempt to deliver one event to one endpoint (the webhook log)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),)

    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(1000))
    response_body: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None]
    succeeded: Mapped[bool] = mapped_column(default=False)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
