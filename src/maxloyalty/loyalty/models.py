"""Loyalty programmes, their levels, and the tier history of cards."""

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
    LargeBinary,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from maxloyalty.kit import refdata
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.models import Base, TenantOwned, Timestamps, UUIDPrimaryKey, str_enum


class ProgramType(enum.StrEnum):
    POINTS = "POINTS"
    DISCOUNT = "DISCOUNT"


class CardMode(enum.StrEnum):
    UNIFIED = "UNIFIED"  # one card per guest per network
    SEPARATE = "SEPARATE"  # a card per restaurant


class Rounding(enum.StrEnum):
    """How a fraction of a point earned on a check is rounded."""

    FLOOR = "FLOOR"
    HALF_UP = "HALF_UP"
    CEILING = "CEILING"


class LevelMetric(enum.StrEnum):
    LIFETIME = "LIFETIME"
    ROLLING = "ROLLING"


Percent = Numeric(5, 2)


class LoyaltySystem(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    """A tenant's programme (or one restaurant's, when `restaurant_id` is set)."""

    __tablename__ = "loyalty_systems"
    __table_args__ = (
        Index(
            "uq_loyalty_systems_scope",
            "tenant_id",
            text("coalesce(restaurant_id, '00000000-0000-0000-0000-000000000000'::uuid)"),
            unique=True,
        ),
        CheckConstraint("expiry_days BETWEEN 1 AND 3650", name="expiry_days_range"),
        CheckConstraint("pending_days BETWEEN 0 AND 90", name="pending_days_range"),
        CheckConstraint(
            "max_redeem_percent > 0 AND max_redeem_percent <= 100", name="max_redeem_range"
        ),
        CheckConstraint("rolling_days IS NULL OR rolling_days > 0", name="rolling_days_positive"),
        UniqueConstraint("tenant_id", "id"),
    )

    restaurant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("restaurants.id"))
    type: Mapped[ProgramType] = mapped_column(str_enum(ProgramType, "program_type"))
    mode: Mapped[CardMode] = mapped_column(str_enum(CardMode, "card_mode"))
    expiry_days: Mapped[int] = mapped_column(default=180)
    pending_days: Mapped[int] = mapped_column(default=0)
    max_redeem_percent: Mapped[Decimal] = mapped_column(Percent, default=Decimal(50))
    discount_cap_percent: Mapped[Decimal | None] = mapped_column(Percent)
    level_metric: Mapped[LevelMetric] = mapped_column(
        str_enum(LevelMetric, "level_metric"), default=LevelMetric.LIFETIME
    )
    rolling_days: Mapped[int | None]
    manual_approval_threshold: Mapped[int] = mapped_column(default=1000)
    expiry_reminder_days: Mapped[int] = mapped_column(default=7)
    allow_guest_transfers: Mapped[bool] = mapped_column(default=False)
    # Refuse the static 6-digit code and the static ML1 QR at identification: only the
    # guest app's rotating ones (and the phone) find a card, so a screenshot stops working.
    require_rotating_code: Mapped[bool] = mapped_column(default=False)
    rounding: Mapped[Rounding] = mapped_column(
        str_enum(Rounding, "rounding"), default=Rounding.FLOOR
    )
    design: Mapped[dict[str, Any]] = mapped_column(default=dict)


# The image types a logo may be, and the largest one kept. No SVG: it can carry script.
LOGO_TYPES = ("image/png", "image/jpeg", "image/webp")
MAX_LOGO_BYTES = 256 * 1024


class BrandLogo(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    """A programme's logo on the guest's card, uploaded and stored here (never a link to
    elsewhere): the bytes, their checked type and their digest (the ETag)."""

    __tablename__ = "brand_logos"
    __table_args__ = (
        UniqueConstraint("loyalty_system_id"),
        ForeignKeyConstraint(
            ["tenant_id", "loyalty_system_id"],
            ["loyalty_systems.tenant_id", "loyalty_systems.id"],
            name="fk_brand_logos_program",
            ondelete="CASCADE",
        ),
        CheckConstraint(
            "content_type IN ({})".format(", ".join(f"'{kind}'" for kind in LOGO_TYPES)),
            name="content_type_known",
        ),
        CheckConstraint(f"size BETWEEN 1 AND {MAX_LOGO_BYTES}", name="size_range"),
        CheckConstraint("octet_length(data) = size", name="size_matches"),
    )

    loyalty_system_id: Mapped[uuid.UUID]
    content_type: Mapped[str] = mapped_column(String(16))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    # Read only to serve the image: listing programmes never drags the bytes along.
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True, deferred_raiseload=True)


class LoyaltyLevel(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    __tablename__ = "loyalty_levels"
    __table_args__ = (
        UniqueConstraint("loyalty_system_id", "name"),
        # Deferred: renumbering levels passes through duplicates inside one transaction.
        UniqueConstraint("loyalty_system_id", "position", deferrable=True, initially="DEFERRED"),
        CheckConstraint("percentage >= 0 AND percentage <= 100", name="percentage_range"),
        CheckConstraint("min_spent >= 0", name="min_spent_non_negative"),
        CheckConstraint("birthday_bonus >= 0 AND purchase_bonus >= 0", name="bonuses_non_negative"),
    )

    loyalty_system_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("loyalty_systems.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(32))
    position: Mapped[int]
    min_spent: Mapped[int]  # kopecks of spend that reach this level
    percentage: Mapped[Decimal] = mapped_column(Percent)
    birthday_bonus: Mapped[int] = mapped_column(default=0)
    purchase_bonus: Mapped[int] = mapped_column(default=0)
    free_item_code: Mapped[str | None] = mapped_column(String(64))
    color: Mapped[str | None] = mapped_column(String(7))
    icon_url: Mapped[str | None] = mapped_column(String(500))
    # Retired levels stay (cards' history points at them) with a negative position.
    is_active: Mapped[bool] = mapped_column(default=True)


class TierChangeReason(enum.StrEnum):
    PURCHASE = "PURCHASE"
    LEVELS_EDITED = "LEVELS_EDITED"
    REFUND = "REFUND"
    ROLLING_WINDOW = "ROLLING_WINDOW"


class TierChange(UUIDPrimaryKey, TenantOwned, Base):
    __tablename__ = "tier_changes"

    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guest_cards.id"), index=True)
    from_level_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("loyalty_levels.id"))
    to_level_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("loyalty_levels.id"))
    reason: Mapped[TierChangeReason] = mapped_column(str_enum(TierChangeReason, "tier_reason"))
    operation_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Every till call reads the programme and its levels: kept per process, dropped on change.
refdata.watch(LoyaltySystem, LoyaltyLevel)
