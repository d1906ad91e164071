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

from maxloyalty.kit.errors import AppError, Conflict
from maxloyalty.ledger.models import LedgerOperation


def request_hash(*parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def require_key(idempotency_key: str | None) -> str:
    if not idempotency_key:
        raise AppError(
            "Send an Idempotency-Key header with every operation.",
            code="idempotency_key_required",
            status=400,
        )
    return idempotency_key


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
    operation_id = uuid.uuid4()
    inserted = await session.scalar(
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
        .returning(LedgerOperation.id)
    )
    if inserted is not None:
        operation = await session.get(LedgerOperation, inserted)
        assert operation is not None
        return operation
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
        raise Conflict("A concurrent request is in flight; retry.", code="operation_in_flight")
    if earlier.request_hash != fingerprint:
        if idempotency_key is not None and earlier.idempotency_key == idempotency_key:
            raise AppError(
                "This Idempotency-Key was used for a different request.",
                code="idempotency_key_reused",
                status=422,
            )
        raise Conflict(
            "This check was already posted with different contents.",
            code="check_already_posted",
        )
    return Replay(earlier.status_code, earlier.response)
