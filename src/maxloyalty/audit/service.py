"""Writing the activity log; services call `record` for every change they make."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.models import ActivityLog
from maxloyalty.kit import context
from maxloyalty.kit.db import TENANT_KEY
from maxloyalty.kit.timestamps import rfc3339

MONTHS_AHEAD = 3


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return value


def snapshot(entity: object) -> dict[str, Any]:
    """The column values of an ORM object, JSON-ready, for before/after records."""
    mapper = inspect(entity).mapper
    return {attr.key: _json_safe(getattr(entity, attr.key)) for attr in mapper.column_attrs}


async def record(
    session: AsyncSession,
    action: str,
    entity_type: str,
    entity_id: object | None = None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    tenant_id: uuid.UUID | None = None,
) -> None:
    """Append one entry in the caller's transaction; the actor and client come from context."""
    actor = context.actor.get()
    client = context.client.get()
    session.add(
        ActivityLog(
            tenant_id=tenant_id or session.info.get(TENANT_KEY),
            actor_type=actor.kind,
            actor_id=actor.id,
            actor_role=actor.role,
            action=action,
            entity_type=entity_type,
            entity_id=None if entity_id is None else str(entity_id),
            before=before,
            after=after,
            ip=client.ip,
            user_agent=client.user_agent[:500] if client.user_agent else None,
            request_id=context.request_id.get(),
        )
    )
    await session.flush()


async def ensure_partitions(session: AsyncSession, months_ahead: int = MONTHS_AHEAD) -> None:
    """Create the coming months' partitions of every partitioned table (a definer function:
    the app role may not run DDL itself)."""
    await session.execute(
        text("SELECT maxloyalty_ensure_partitions(:months)"), {"months": months_ahead}
    )
