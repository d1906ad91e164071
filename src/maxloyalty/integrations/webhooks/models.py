"""Tenants' webhook endpoints, the events owed to each (`webhook_deliveries`) and the log of
every HTTP attempt (`webhook_logs`)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.crypto import EncryptedText
from maxloyalty.kit.models import Base, TenantOwned, Timestamps, UUIDPrimaryKey, str_enum


class WebhookEndpoint(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    """Where a tenant wants its events; `event_types` empty means all of them."""

    __tablename__ = "webhook_endpoints"
    # Children reference (tenant_id, id): no row can point into another tenant.
    __table_args__ = (UniqueConstraint("tenant_id", "id"),)

    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    secret: Mapped[str] = mapped_column(EncryptedText(300))
    # After a rotation the old secret signs too, until it expires, so receivers can switch.
    previous_secret: Mapped[str | None] = mapped_column(EncryptedText(300))
    previous_secret_expires_at: Mapped[datetime | None]
    description: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))


class DeliveryStatus(enum.StrEnum):
    PENDING = "PENDING"  # waiting for its turn, or for its next attempt
    SENT = "SENT"
    FAILED = "FAILED"  # the retry schedule ran out


class WebhookDelivery(UUIDPrimaryKey, TenantOwned, Base):
    """One event owed to one endpoint. An endpoint's pending deliveries go out one at a
    time in the order of their events (`event_created_at`, then `event_id`)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("endpoint_id", "event_id"),
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            name="fk_webhook_deliveries_endpoint",
        ),
        Index(
            "ix_webhook_deliveries_queue",
            "endpoint_id",
            "event_created_at",
            "event_id",
            postgresql_where="status = 'PENDING'",
        ),
    )

    endpoint_id: Mapped[uuid.UUID]
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("integration_events.id"))
    event_type: Mapped[str] = mapped_column(String(64))
    event_created_at: Mapped[datetime]  # the event's, copied: the queue's order
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, "webhook_delivery_status"), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)  # of the current series
    # On the database clock, the one the job queue schedules by; NULL: due now.
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class WebhookLog(UUIDPrimaryKey, TenantOwned, Base):
    """One HTTP attempt of a delivery (append-only)."""

    __tablename__ = "webhook_logs"
    __table_args__ = (
        Index("ix_webhook_logs_endpoint", "endpoint_id", "created_at"),
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            name="fk_webhook_logs_endpoint",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "delivery_id"],
            ["webhook_deliveries.tenant_id", "webhook_deliveries.id"],
            name="fk_webhook_logs_delivery",
        ),
    )

    delivery_id: Mapped[uuid.UUID]
    endpoint_id: Mapped[uuid.UUID]
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
