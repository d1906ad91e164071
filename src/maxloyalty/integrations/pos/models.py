"""A restaurant's till connections, what they sent us and what we asked of them.

- `pos_integrations`: one till system of one restaurant, with its API key (every till call
  authenticates with it), its encrypted credentials for calling the till vendor's cloud,
  and, for iiko, the secret iiko sends back with each webhook.
- `pos_transactions`: every check a till posted, with its lines and payments as the till
  sent them (R-Keeper's check XML verbatim, encrypted: it is kept for audit only), and what
  the ledger made of it.
- `pos_events`: inbound webhook events, for audit and replay: the guest's personal fields
  apart and encrypted (`iiko/personal.py`), the rest as sent.
- `pos_syncs`: calls we made to a vendor's cloud (pulls of its directory, pushes of our
  webhook settings), with their outcome and the next retry.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.crypto import EncryptedText
from maxloyalty.kit.models import Base, TenantOwned, Timestamps, UUIDPrimaryKey, str_enum


class PosSystem(enum.StrEnum):
    IIKO = "IIKO"
    RKEEPER = "RKEEPER"
    CUSTOM = "CUSTOM"


class PosIntegration(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    __tablename__ = "pos_integrations"
    __table_args__ = (
        Index("ix_pos_integrations_restaurant", "restaurant_id"),
        # Children reference (tenant_id, id): no row can point into another tenant.
        UniqueConstraint("tenant_id", "id"),
        ForeignKeyConstraint(
            ["tenant_id", "restaurant_id"],
            ["restaurants.tenant_id", "restaurants.id"],
            name="fk_pos_integrations_restaurant",
        ),
    )

    restaurant_id: Mapped[uuid.UUID]
    system: Mapped[PosSystem] = mapped_column(str_enum(PosSystem, "pos_system"))
    name: Mapped[str] = mapped_column(String(120))
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"), unique=True)
    credentials: Mapped[str | None] = mapped_column(EncryptedText(2000))  # JSON object
    webhook_secret: Mapped[str | None] = mapped_column(EncryptedText(300))
    webhook_secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # iiko: the organization id; R-Keeper: the restaurant code the till sends.
    external_id: Mapped[str | None] = mapped_column(String(128))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    hold_ttl_seconds: Mapped[int] = mapped_column(default=900)
    is_active: Mapped[bool] = mapped_column(default=True)
    last_sync_at: Mapped[datetime | None]


class PosTransactionStatus(enum.StrEnum):
    PROCESSED = "PROCESSED"
    PENDING = "PENDING"
    FAILED = "FAILED"


class PosTransaction(UUIDPrimaryKey, TenantOwned, Base):
    __tablename__ = "pos_transactions"
    __table_args__ = (
        Index("ix_pos_transactions_integration", "integration_id", "created_at"),
        # Erasing a person finds their cards' checks.
        Index("ix_pos_transactions_card", "card_id", postgresql_where=text("card_id IS NOT NULL")),
        ForeignKeyConstraint(
            ["tenant_id", "integration_id"],
            ["pos_integrations.tenant_id", "pos_integrations.id"],
            name="fk_pos_transactions_integration",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "card_id"],
            ["guest_cards.tenant_id", "guest_cards.id"],
            name="fk_pos_transactions_card",
        ),
    )

    integration_id: Mapped[uuid.UUID]
    card_id: Mapped[uuid.UUID | None]
    # The ledger operation it became: one record per operation, however often it is re-sent.
    ledger_operation_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)
    operation: Mapped[str] = mapped_column(String(16))  # SALE, REFUND
    order_id: Mapped[str] = mapped_column(String(64))
    check_number: Mapped[str | None] = mapped_column(String(64))
    check_amount: Mapped[int]  # kopecks
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    payments: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    raw: Mapped[str | None] = mapped_column(EncryptedText())
    points_accrued: Mapped[int] = mapped_column(default=0)
    points_redeemed: Mapped[int] = mapped_column(default=0)
    discount_applied: Mapped[int] = mapped_column(default=0)  # kopecks
    status: Mapped[PosTransactionStatus] = mapped_column(
        str_enum(PosTransactionStatus, "pos_transaction_status")
    )
    error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PosEventStatus(enum.StrEnum):
    RECEIVED = "RECEIVED"
    PROCESSED = "PROCESSED"
    IGNORED = "IGNORED"
    FAILED = "FAILED"


class PosEvent(UUIDPrimaryKey, TenantOwned, Base):
    __tablename__ = "pos_events"
    __table_args__ = (
        Index("ix_pos_events_integration", "integration_id", "received_at"),
        # Erasing a person finds their events by phone or by card.
        Index(
            "ix_pos_events_phone_hash",
            "phone_hash",
            postgresql_where=text("phone_hash IS NOT NULL"),
        ),
        Index("ix_pos_events_card", "card_id", postgresql_where=text("card_id IS NOT NULL")),
        ForeignKeyConstraint(
            ["tenant_id", "integration_id"],
            ["pos_integrations.tenant_id", "pos_integrations.id"],
            name="fk_pos_events_integration",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "card_id"],
            ["guest_cards.tenant_id", "guest_cards.id"],
            name="fk_pos_events_card",
        ),
    )

    integration_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]]  # without the personal fields
    personal: Mapped[str | None] = mapped_column(EncryptedText())  # JSON {path: value}
    phone_hash: Mapped[str | None] = mapped_column(String(64))  # the order phone's blind index
    card_id: Mapped[uuid.UUID | None]  # the member processing found
    status: Mapped[PosEventStatus] = mapped_column(
        str_enum(PosEventStatus, "pos_event_status"), default=PosEventStatus.RECEIVED
    )
    detail: Mapped[str | None] = mapped_column(String(1000))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class SyncDirection(enum.StrEnum):
    PUSH = "PUSH"
    PULL = "PULL"


class SyncStatus(enum.StrEnum):
    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


class PosSync(UUIDPrimaryKey, TenantOwned, Base):
    __tablename__ = "pos_syncs"
    __table_args__ = (
        Index("ix_pos_syncs_integration", "integration_id", "created_at"),
        ForeignKeyConstraint(
            ["tenant_id", "integration_id"],
            ["pos_integrations.tenant_id", "pos_integrations.id"],
            name="fk_pos_syncs_integration",
        ),
    )

    integration_id: Mapped[uuid.UUID]
    direction: Mapped[SyncDirection] = mapped_column(str_enum(SyncDirection, "sync_direction"))
    operation: Mapped[str] = mapped_column(String(64))
    status: Mapped[SyncStatus] = mapped_column(
        str_enum(SyncStatus, "sync_status"), default=SyncStatus.PENDING
    )
    attempt: Mapped[int] = mapped_column(default=1)
    error: Mapped[str | None] = mapped_column(String(1000))
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    next_retry_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
