"""The outbox of domain events (`integration_events`).

`publish` writes the event and enqueues its delivery in the caller's transaction: a change
that rolls back publishes nothing, and a committed one is delivered at least once. Delivery
runs every handler subscribed to the event type (webhooks, notifications, ... in their
own packages); handlers must be idempotent, since a failed attempt is retried whole.
"""

from __future__ import annotations

import enum
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Index, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from maxloyalty.kit import jobs
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.models import Base, TenantOwned, UUIDPrimaryKey, str_enum

log = structlog.get_logger(__name__)

DELIVER_JOB = "outbox.deliver"


class EventStatus(enum.StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"


class IntegrationEvent(UUIDPrimaryKey, TenantOwned, Base):
    __tablename__ = "integration_events"
    __table_args__ = (
        Index("ix_integration_events_pending", "created_at", postgresql_where="status = 'PENDING'"),
    )

    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    status: Mapped[EventStatus] = mapped_column(
        str_enum(EventStatus, "event_status"), default=EventStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


EventHandler = Callable[[AsyncSession, IntegrationEvent], Awaitable[None]]
_handlers: dict[str, list[EventHandler]] = defaultdict(list)


def subscribe(event_type: str, handler: EventHandler) -> None:
    _handlers[event_type].append(handler)


def unsubscribe(event_type: str, handler: EventHandler) -> None:
    _handlers[event_type].remove(handler)


_ALL = "*"


def subscribe_all(handler: EventHandler) -> None:
    """Receive every event type (e.g. the webhook fan-out)."""
    _handlers[_ALL].append(handler)


async def publish(
    session: AsyncSession, tenant_id: uuid.UUID, event_type: str, payload: dict[str, Any]
) -> IntegrationEvent:
    event = IntegrationEvent(tenant_id=tenant_id, event_type=event_type, payload=payload)
    session.add(event)
    await session.flush()
    await jobs.enqueue(
        session, DELIVER_JOB, {"tenant_id": str(tenant_id), "event_id": str(event.id)}
    )
    return event


@jobs.registry.job(DELIVER_JOB)
async def deliver(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    tenant_id = uuid.UUID(payload["tenant_id"])
    event_id = uuid.UUID(payload["event_id"])
    try:
        async with ctx.db.transaction(tenant_id) as session:
            event = await session.scalar(
                select(IntegrationEvent)
                .where(IntegrationEvent.id == event_id)
                .with_for_update(skip_locked=True)
            )
            if event is None or event.status is EventStatus.DELIVERED:
                return  # delivered already, or another worker holds it right now
            for handler in [*_handlers.get(event.event_type, []), *_handlers.get(_ALL, [])]:
                await handler(session, event)
            event.status = EventStatus.DELIVERED
            event.delivered_at = utcnow()
            event.attempts += 1
    except Exception as exc:
        async with ctx.db.transaction(tenant_id) as session:
            await session.execute(
                update(IntegrationEvent)
                .where(IntegrationEvent.id == event_id)
                .values(
                    attempts=IntegrationEvent.attempts + 1,
                    last_error=f"{type(exc).__name__}: {exc}"[:1000],
                )
            )
        raise
