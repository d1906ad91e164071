"""Guest profiles (one per network: each network is its own data operator) and cards."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (
    CHAR,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from maxloyalty.kit.models import Base, TenantOwned, Timestamps, UUIDPrimaryKey, str_enum


class Gender(enum.StrEnum):
    MALE = "MALE"
    FEMALE = "FEMALE"
    OTHER = "OTHER"


class Channel(enum.StrEnum):
    SMS = "SMS"
    TELEGRAM = "TELEGRAM"
    EMAIL = "EMAIL"
    PHONE = "PHONE"


class GuestProfile(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    __tablename__ = "guest_profiles"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    gender: Mapped[Gender | None] = mapped_column(str_enum(Gender, "gender"))
    birth_date: Mapped[date | None]
    city: Mapped[str | None] = mapped_column(String(120))
    avatar_url: Mapped[str | None] = mapped_column(String(500))
    telegram_username: Mapped[str | None] = mapped_column(String(64))
    preferred_channel: Mapped[Channel] = mapped_column(
        str_enum(Channel, "channel"), default=Channel.SMS
    )


class GuestChild(UUIDPrimaryKey, TenantOwned, Base):
    __tablename__ = "guest_children"

    profile_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("guest_profiles.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date | None]


class CardStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    BLOCKED = "BLOCKED"
    DELETED = "DELETED"


class RegistrationSource(enum.StrEnum):
    POS = "POS"
    LINK = "LINK"
    TELEGRAM = "TELEGRAM"
    MANUAL = "MANUAL"


class GuestCard(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    """A loyalty card. `balance` and `pending_balance` are caches of the ledger, changed only
    with the row locked, in the transaction that books the ledger rows."""

    __tablename__ = "guest_cards"
    __table_args__ = (
        # The 6-digit code is what a cashier types: unique among a network's active cards.
        Index(
            "uq_guest_cards_active_code",
            "tenant_id",
            "code",
            unique=True,
            postgresql_where=text("status = 'ACTIVE'"),
        ),
        # UNIFIED: one card per guest per network; SEPARATE: one per restaurant.
        Index(
            "uq_guest_cards_holder",
            "tenant_id",
            "user_id",
            text("coalesce(restaurant_id, '00000000-0000-0000-0000-000000000000'::uuid)"),
            unique=True,
            postgresql_where=text("status <> 'DELETED'"),
        ),
        CheckConstraint("balance >= 0", name="balance_non_negative"),
        CheckConstraint("pending_balance >= 0", name="pending_non_negative"),
        CheckConstraint("code ~ '^[0-9]{6}$'", name="code_six_digits"),
        # Lets child tables reference (tenant_id, id), so a row can't point across tenants.
        UniqueConstraint("tenant_id", "id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    loyalty_system_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("loyalty_systems.id"))
    restaurant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("restaurants.id"))
    code: Mapped[str] = mapped_column(String(6))
    status: Mapped[CardStatus] = mapped_column(
        str_enum(CardStatus, "card_status"), default=CardStatus.ACTIVE
    )
    registration_source: Mapped[RegistrationSource] = mapped_column(
        str_enum(RegistrationSource, "registration_source")
    )
    level_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("loyalty_levels.id"))
    balance: Mapped[int] = mapped_column(default=0)
    pending_balance: Mapped[int] = mapped_column(default=0)
    lifetime_spent: Mapped[int] = mapped_column(default=0)  # kopecks paid with money
    total_visits: Mapped[int] = mapped_column(default=0)
    last_visit_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime | None]


class CardRotatingCode(Base):
    """A rotating 6-digit code issued to a card for one window (unix time // 60). Codes are
    derived (`kit.signing.RotatingCodes`) and cannot be reversed, so each issued one is kept
    here to be found; rows of past windows are pruned by `guests.prune_rotating_codes`."""

    __tablename__ = "card_rotating_codes"
    __table_args__ = (
        # One code per card and window: issuing again in the window answers the same one.
        PrimaryKeyConstraint("tenant_id", "card_id", "time_window"),
        # A typed code names one card in its window.
        UniqueConstraint("tenant_id", "time_window", "code"),
        ForeignKeyConstraint(
            ["tenant_id", "card_id"],
            ["guest_cards.tenant_id", "guest_cards.id"],
            name="fk_card_rotating_codes_card",
        ),
        CheckConstraint("code ~ '^[0-9]{6}$'", name="code_six_digits"),
    )

    # No index of its own: the primary key leads with it (the row policy filters on it).
    tenant_id: Mapped[uuid.UUID]
    card_id: Mapped[uuid.UUID]
    # Not `window`: a reserved word in SQL, which raw SQL would have to quote.
    time_window: Mapped[int]
    code: Mapped[str] = mapped_column(CHAR(6))
    expires_at: Mapped[datetime]
