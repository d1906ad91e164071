from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, func
from sqlalchemy.dialects.postgresql import INET
from sqlalchemy.orm import Mapped, mapped_column

from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.ids import uuid7
from maxloyalty.kit.models import Base


class ActivityLog(Base):
    """Append-only (the app role may only INSERT and SELECT), partitioned by month.

    `tenant_id` is NULL for platform-level actions; it has no foreign key so that
    the log outlives what it describes.
    """

    __tablename__ = "activity_log"
    __table_args__ = (
        Index("ix_activity_log_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_activity_log_entity", "entity_type", "entity_id"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    # Set in Python: an INSERT ... RETURNING of a server default would need the row to be
    # readable, and platform-level rows (no tenant) are not readable by the app role.
    created_at: Mapped[datetime] = mapped_column(
        primary_key=True, default=utcnow, server_default=func.now()
    )
    tenant_id: Mapped[uuid.UUID | None]
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[uuid.UUID | None]
    actor_role: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    ip: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(String(500))
    request_id: Mapped[str | None] = mapped_column(String(128))
