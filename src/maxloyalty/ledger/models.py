"""The points ledger.

- `point_transactions`: immutable rows (the app role may change only a row's status fields,
  never an amount, and may delete nothing), partitioned by month.
- `point_lots`: every credit, with what is left of it, when it becomes spendable and when it
  expires. Spends, expiries and reversals draw from lots through `lot_allocations`
  (negative allocations give points back), so for every lot
  `remaining = amount - sum(allocations)`.
- `ledger_operations`: one row per business operation (a sale, a refund, ...): the
  idempotency key and business key are unique here, since a unique key on the partitioned
  transactions table would have to include the partition key.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Numeric,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.ids import uuid7
from maxloyalty.kit.models import Base, TenantOwned, UUIDPrimaryKey, str_enum


class TxType(enum.StrEnum):
    ACCRUAL = "ACCRUAL"
    REDEMPTION = "REDEMPTION"
    MANUAL = "MANUAL"
    PROMO = "PROMO"
    BIRTHDAY = "BIRTHDAY"
    REFERRAL = "REFERRAL"
    EXPIRATION = "EXPIRATION"
    TRANSFER = "TRANSFER"
    ADJUSTMENT = "ADJUSTMENT"
    REVERSAL = "REVERSAL"


class TxStatus(enum.StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REVERSED = "REVERSED"


class TxSource(enum.StrEnum):
    POS = "POS"
    MANUAL = "MANUAL"
    PROMO = "PROMO"
    SYSTEM = "SYSTEM"


class TxChannel(enum.StrEnum):
    """Who posted a row, beside `source` (what kind of operation it is): a cashier's sale
    and a till's are both POS, but reports tell them apart by this."""

    STAFF = "STAFF"  # a signed-in staff member
    POS_API = "POS_API"  # a CUSTOM till integration, and any other API-key client
    RKEEPER = "RKEEPER"
    IIKO = "IIKO"
    GUEST_APP = "GUEST_APP"  # the guest themselves
    SYSTEM = "SYSTEM"  # jobs (expiry, birthdays): no caller


class PointTransaction(TenantOwned, Base):
    __tablename__ = "point_transactions"
    __table_args__ = (
        # A card's rows by id (time-ordered): the history's page is read newest first from
        # each partition's index and merged, never sorting all of the card's rows.
        Index("ix_point_transactions_card", "card_id", "id"),
        Index("ix_point_transactions_operation", "operation_id"),
        Index("ix_point_transactions_reverses", "reverses_id"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    created_at: Mapped[datetime] = mapped_column(
        primary_key=True, default=utcnow, server_default=func.now()
    )
    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guest_cards.id"))
    operation_id: Mapped[uuid.UUID]
    type: Mapped[TxType] = mapped_column(str_enum(TxType, "tx_type"))
    status: Mapped[TxStatus] = mapped_column(str_enum(TxStatus, "tx_status"))
    amount: Mapped[int]  # signed points
    source: Mapped[TxSource] = mapped_column(str_enum(TxSource, "tx_source"))
    channel: Mapped[TxChannel] = mapped_column(str_enum(TxChannel, "tx_channel"))
    source_id: Mapped[str | None] = mapped_column(String(128))
    restaurant_id: Mapped[uuid.UUID | None]
    check_number: Mapped[str | None] = mapped_column(String(64))
    check_amount: Mapped[int | None]  # kopecks
    paid_amount: Mapped[int | None]  # kopecks paid with money
    discount_amount: Mapped[int | None]  # kopecks
    level_id: Mapped[uuid.UUID | None]
    percentage: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    reason: Mapped[str | None] = mapped_column(String(500))
    reverses_id: Mapped[uuid.UUID | None]
    reward_item_id: Mapped[uuid.UUID | None]
    campaign_id: Mapped[uuid.UUID | None]
    created_by_user_id: Mapped[uuid.UUID | None]
    approved_by_user_id: Mapped[uuid.UUID | None]
    status_changed_at: Mapped[datetime | None]


class PointLot(UUIDPrimaryKey, TenantOwned, Base):
    __tablename__ = "point_lots"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
        # Spends draw the soonest-expiring open lots of a card first.
        Index(
            "ix_point_lots_open",
            "card_id",
            "expires_at",
            postgresql_where=text("remaining > 0"),
        ),
        Index("ix_point_lots_expiring", "expires_at", postgresql_where=text("remaining > 0")),
        # A card's lots waiting to become spendable (few: most lots are active at once). The
        # predicate is written as `.is_(False)` renders: `NOT activated` would not match it.
        Index(
            "ix_point_lots_pending",
            "card_id",
            "activates_at",
            postgresql_where=text("activated IS false"),
        ),
    )

    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guest_cards.id"))
    transaction_id: Mapped[uuid.UUID]
    amount: Mapped[int]
    remaining: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activates_at: Mapped[datetime]
    activated: Mapped[bool]  # counted in the balance (pending lots are not, yet)
    expires_at: Mapped[datetime]


class LotAllocation(UUIDPrimaryKey, TenantOwned, Base):
    __tablename__ = "lot_allocations"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_non_zero"),
        Index("ix_lot_allocations_lot", "lot_id"),
        Index("ix_lot_allocations_transaction", "transaction_id"),
    )

    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("point_lots.id"))
    transaction_id: Mapped[uuid.UUID]
    amount: Mapped[int]  # drawn from the lot; negative when points go back to it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerOperation(UUIDPrimaryKey, TenantOwned, Base):
    """One business operation and its answer, for replays."""

    __tablename__ = "ledger_operations"
    __table_args__ = (
        # A key is the caller's own: two tills counting 1, 2, 3… must not collide.
        Index(
            "uq_ledger_operations_caller_key",
            "tenant_id",
            "created_by",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index(
            "uq_ledger_operations_business_key",
            "tenant_id",
            "business_key",
            unique=True,
            postgresql_where=text("business_key IS NOT NULL"),
        ),
    )

    kind: Mapped[str] = mapped_column(String(32))
    card_id: Mapped[uuid.UUID | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    business_key: Mapped[str | None] = mapped_column(String(300))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status_code: Mapped[int] = mapped_column(default=201)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None]


class HoldStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    COMMITTED = "COMMITTED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class PointHold(UUIDPrimaryKey, TenantOwned, Base):
    """Points a till reserved for an open order (two-phase redemption). An ACTIVE hold whose
    `expires_at` has passed reserves nothing, whether or not the sweeper has marked it yet."""

    __tablename__ = "point_holds"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        # One live reservation per order of an integration.
        Index(
            "uq_point_holds_active_order",
            "tenant_id",
            "integration_id",
            "order_id",
            unique=True,
            postgresql_where=text("status = 'ACTIVE'"),
        ),
        Index("ix_point_holds_card_active", "card_id", postgresql_where=text("status = 'ACTIVE'")),
        Index("ix_point_holds_order", "integration_id", "order_id", "created_at"),
        ForeignKeyConstraint(
            ["tenant_id", "integration_id"],
            ["pos_integrations.tenant_id", "pos_integrations.id"],
            name="fk_point_holds_integration",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "card_id"],
            ["guest_cards.tenant_id", "guest_cards.id"],
            name="fk_point_holds_card",
        ),
    )

    card_id: Mapped[uuid.UUID]
    integration_id: Mapped[uuid.UUID]
    order_id: Mapped[str] = mapped_column(String(64))
    points: Mapped[int]
    check_amount: Mapped[int]  # kopecks, as the till saw it when holding
    status: Mapped[HoldStatus] = mapped_column(
        str_enum(HoldStatus, "hold_status"), default=HoldStatus.ACTIVE
    )
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
