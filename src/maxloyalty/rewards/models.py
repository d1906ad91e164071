from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, String, Uuid
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from maxloyalty.kit.models import Base, TenantOwned, Timestamps, UUIDPrimaryKey


class RedemptionItem(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    """A reward: its price in points, where and when it is offered, how many are left."""

    __tablename__ = "redemption_items"
    __table_args__ = (
        CheckConstraint("points_price > 0", name="price_positive"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_non_negative"),
    )

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    points_price: Mapped[int]
    restaurant_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()), default=list)
    stock: Mapped[int | None]  # None: unlimited
    active_from: Mapped[datetime | None]
    active_to: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(default=True)
    image_url: Mapped[str | None] = mapped_column(String(500))
