from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from maxloyalty.kit import refdata
from maxloyalty.kit.models import Base, TenantOwned, Timestamps, UUIDPrimaryKey, str_enum


class SubscriptionStatus(enum.StrEnum):
    TRIAL = "TRIAL"
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    CANCELLED = "CANCELLED"


class RestaurantStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    CLOSED = "CLOSED"


class PointOfSaleStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


class Tenant(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    organization_type: Mapped[str] = mapped_column(String(32), default="chain")
    subscription_status: Mapped[SubscriptionStatus] = mapped_column(
        str_enum(SubscriptionStatus, "subscription_status"), default=SubscriptionStatus.TRIAL
    )
    timezone: Mapped[str] = mapped_column(String(64))
    max_restaurants: Mapped[int | None]
    max_guests: Mapped[int | None]
    features: Mapped[dict[str, Any]] = mapped_column(default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    logo_url: Mapped[str | None] = mapped_column(String(500))
    primary_color: Mapped[str | None] = mapped_column(String(7))
    secondary_color: Mapped[str | None] = mapped_column(String(7))


class Restaurant(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    __tablename__ = "restaurants"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        # Lets child tables reference (tenant_id, id), so a row can't point across tenants.
        UniqueConstraint("tenant_id", "id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(500))
    city: Mapped[str | None] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[RestaurantStatus] = mapped_column(
        str_enum(RestaurantStatus, "restaurant_status"), default=RestaurantStatus.ACTIVE
    )


class PointOfSale(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    __tablename__ = "points_of_sale"
    __table_args__ = (
        UniqueConstraint("restaurant_id", "name"),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        ForeignKeyConstraint(
            ["tenant_id", "restaurant_id"],
            ["restaurants.tenant_id", "restaurants.id"],
            name="fk_points_of_sale_restaurant",
        ),
    )

    restaurant_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(120))
    external_id: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[PointOfSaleStatus] = mapped_column(
        str_enum(PointOfSaleStatus, "pos_status"), default=PointOfSaleStatus.ACTIVE
    )


# Every till call reads its restaurant and tenant: kept per process, dropped on change.
refdata.watch(Tenant, Restaurant)
