"""Two layers against double posting: the `Idempotency-Key` of a request, and the business
key of what it does (a till's check can be posted once, whatever key it comes with).

The operation row is inserted first, inside the caller's transaction. A concurrent request
with the same key waits on the unique index until the first commits, then finds its row
and replays the stored answer; if the first rolled back, the second simply proceeds.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.kit.ids import uuid7
from maxloyalty.ledger.errors import (
    CheckAlreadyPosted,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    OperationInFlight,
)
from maxloyalty.ledger.models import LedgerOperation
from maxloyalty.ledger.schemas import Outcome


def request_hash(*parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def require_key(idempotency_key: str | None) -> str:
    if not idempotency_key:
        raise IdempotencyKeyRequired()
    return idempotency_key


def status_of(outcome: Outcome[Any], done: int) -> int:
    """The status to answer: a replay's stored one, else `done` (the route's own)."""
    return outcome.stored_status if outcome.stored_status is not None else done


def check_key(restaurant_id: uuid.UUID, check_number: str) -> str:
    """The business key of a posted check (sale or redemption)."""
    return f"check:{restaurant_id}:{check_number}"


@dataclass(frozen=True)
class Replay:
    status_code: int
    response: dict[str, Any]


async def claim(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    kind: str,
    fingerprint: str,
    idempotency_key: str | None,
    business_key: str | None = None,
    created_by: uuid.UUID | None = None,
) -> LedgerOperation | Replay:
    """The new operation to fill in, or the earlier answer to send again."""
    operation_id = uuid7()
    # The new row comes back whole (one round trip, not an insert and a read).
    inserted: LedgerOperation | None = await session.scalar(
        insert(LedgerOperation)
        .values(
            id=operation_id,
            tenant_id=tenant_id,
            kind=kind,
            idempotency_key=idempotency_key,
            business_key=business_key,
            request_hash=fingerprint,
            created_by=created_by,
            response={},
        )
        .on_conflict_do_nothing()
        .returning(LedgerOperation)
    )
    if inserted is not None:
        return inserted
    earlier = None
    if idempotency_key is not None:
        earlier = await session.scalar(
            select(LedgerOperation).where(
                LedgerOperation.idempotency_key == idempotency_key,
                LedgerOperation.created_by == created_by,
            )
        )
    if earlier is None and business_key is not None:
        earlier = await session.scalar(
            select(LedgerOperation).where(LedgerOperation.business_key == business_key)
        )
    if earlier is None:  # the conflicting row vanished (rolled back): a retry will pass
        raise OperationInFlight()
    if earlier.request_hash != fingerprint:
        if idempotency_key is not None and earlier.idempotency_key == idempotency_key:
            raise IdempotencyKeyReused()
        raise CheckAlreadyPosted()
    return Replay(earlier.status_code, earlier.response)
