"""Reference data every till call reads — a network's restaurants, programme, levels and
settings — kept per process, so a sale does not read them again each time.

They change rarely and only through the ORM: a flush that writes a watched class marks its
tenant, and when that transaction commits the tenant's entries are dropped here at once and,
through the live broker (Redis pub/sub when `REDIS_URL` is set), in every other process
(`follow`). A short time to live is the safety net for a message lost on the way. Entries
are keyed by tenant, so one network's row never answers another's request.

Values are detached copies of the rows: they belong to no session, and reading their
columns needs none; code that changes a row loads it in its own session."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import structlog
from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction, make_transient_to_detached

from maxloyalty.kit import live
from maxloyalty.kit.db import TENANT_KEY

log = structlog.get_logger(__name__)

TOPIC = "refdata"
TTL_SECONDS = 60.0
_MARKED = "refdata_tenants"
T = TypeVar("T")


class ReferenceData:
    def __init__(self, ttl_seconds: float = TTL_SECONDS) -> None:
        self.ttl_seconds = ttl_seconds
        self._items: dict[tuple[uuid.UUID, Hashable], tuple[float, Any]] = {}
        self._generations: defaultdict[uuid.UUID, int] = defaultdict(int)

    def get(self, tenant_id: uuid.UUID, key: Hashable) -> Any | None:
        item = self._items.get((tenant_id, key))
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def stamp(self, tenant_id: uuid.UUID) -> int:
        """Take before reading what will be `put`."""
        return self._generations[tenant_id]

    def put(self, tenant_id: uuid.UUID, key: Hashable, value: Any, stamp: int) -> None:
        """Keep `value`, unless the tenant's data changed since it was read."""
        if stamp == self._generations[tenant_id]:
            self._items[(tenant_id, key)] = (time.monotonic() + self.ttl_seconds, value)

    def invalidate(self, tenant_id: uuid.UUID) -> None:
        self._generations[tenant_id] += 1
        for entry in [k for k in self._items if k[0] == tenant_id]:
            del self._items[entry]

    def clear(self) -> None:
        for tenant_id in {k[0] for k in self._items} | set(self._generations):
            self._generations[tenant_id] += 1
        self._items.clear()


reference = ReferenceData()
_watched: tuple[type, ...] = ()


def watch(*classes: type) -> None:
    """Changes to rows of `classes` (each with a `tenant_id`) invalidate their tenant."""
    global _watched
    _watched = (*_watched, *classes)


def detached_copy(row: T) -> T:
    """A copy of `row`'s loaded columns that belongs to no session."""
    mapper = inspect(type(row))
    copy = type(row)()
    for column in mapper.column_attrs:
        setattr(copy, column.key, getattr(row, column.key))
    make_transient_to_detached(copy)
    return copy


def _copied(value: Any) -> Any:
    if isinstance(value, list):
        return [detached_copy(row) for row in value]
    return detached_copy(value)


async def remembered(
    session: AsyncSession, key: Hashable, load: Callable[[], Awaitable[T | None]]
) -> T | None:
    """What `load` reads for the session's tenant, read once per process until it changes.
    A miss answers the session's own rows; the process keeps copies (None is not kept)."""
    tenant_id = session.info.get(TENANT_KEY)
    if not isinstance(tenant_id, uuid.UUID) or _changing(session.sync_session, tenant_id):
        return await load()
    kept: T | None = reference.get(tenant_id, key)
    if kept is not None:
        return kept
    stamp = reference.stamp(tenant_id)
    value = await load()
    if value is not None:
        reference.put(tenant_id, key, _copied(value), stamp)
    return value


def _changing(session: Session, tenant_id: uuid.UUID) -> bool:
    """Whether this transaction writes the tenant's reference data: then it reads its own
    writes, not the process's copy of what was committed before."""
    if tenant_id in session.info.get(_MARKED, ()):
        return True
    pending = (*session.new, *session.dirty, *session.deleted)
    return any(isinstance(row, _watched) for row in pending)


@event.listens_for(Session, "after_flush")
def _mark_changed_tenants(session: Session, _flush: UOWTransaction) -> None:
    if not _watched:
        return
    for row in (*session.new, *session.dirty, *session.deleted):
        if isinstance(row, _watched):
            tenant_id = getattr(row, "tenant_id", None) or getattr(row, "id", None)
            if isinstance(tenant_id, uuid.UUID):
                session.info.setdefault(_MARKED, set()).add(tenant_id)


@event.listens_for(Session, "after_commit")
def _invalidate_committed(session: Session) -> None:
    tenants: set[uuid.UUID] | None = session.info.pop(_MARKED, None)
    if not tenants:
        return
    broker = live.broker_of(session)
    for tenant_id in tenants:
        reference.invalidate(tenant_id)
        if broker is not None:
            broker.publish_soon(TOPIC, {"tenant_id": str(tenant_id)})


@event.listens_for(Session, "after_rollback")
def _forget_marks(session: Session) -> None:
    session.info.pop(_MARKED, None)


async def follow(broker: live.Broker) -> None:
    """Drop what other processes changed, for as long as the broker runs."""
    async with broker.subscribe(TOPIC) as subscription:
        async for message in subscription:
            if message is None:  # a gap: anything may have changed
                reference.clear()
                continue
            try:
                reference.invalidate(uuid.UUID(str(message["tenant_id"])))
            except (KeyError, ValueError):
                log.warning("refdata_message_unreadable")
