"""API keys for tills and other SYSTEM clients.

A key reads `mlk_<tenant id hex>_<secret>`: the tenant part lets the server look the key
up under that tenant's row-level security; only an HMAC of the whole key is stored, and
the key is shown once. A key may also require signed requests (for tills on untrusted
networks): `X-ML-Timestamp` and `X-ML-Signature: v1=<hex HMAC-SHA256 of
"{timestamp}.{METHOD}.{path?query}.{Idempotency-Key}.{body}">` with the key's signing
secret (the key empty when the request has none).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.identity.errors import (
    ApiKeyNotFound,
    ApiKeyRevoked,
    ApiKeySuspended,
    InvalidApiKey,
    InvalidSignature,
)
from maxloyalty.identity.models import ApiKey
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.service import revocation
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import Unauthorized
from maxloyalty.kit.pagination import PageParams, paginate

KEY_PREFIX = "mlk_"
SIGNATURE_WINDOW_SECONDS = 300
_LAST_USED_GRANULARITY = timedelta(minutes=1)


def key_hash(hmac_key: bytes, key: str) -> str:
    return hmac.new(hmac_key, key.encode(), hashlib.sha256).hexdigest()


def tenant_named(token: str, prefix: str, invalid: Unauthorized) -> uuid.UUID:
    """The tenant a `<prefix><tenant hex>_<secret>` credential names (`invalid` if none)."""
    try:
        tenant_hex, _ = token.removeprefix(prefix).split("_", 1)
        return uuid.UUID(hex=tenant_hex)
    except ValueError as exc:
        raise invalid from exc


def tenant_of_key(key: str) -> uuid.UUID:
    return tenant_named(key, KEY_PREFIX, InvalidApiKey())


def key_revoked() -> ApiKeyRevoked:
    return ApiKeyRevoked()


def key_suspended() -> ApiKeySuspended:
    return ApiKeySuspended()


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    key: str
    signing_secret: str | None


async def create_key(
    session: AsyncSession,
    hmac_key: bytes,
    *,
    tenant_id: uuid.UUID,
    name: str,
    restaurant_ids: list[uuid.UUID],
    require_signature: bool,
    created_by: uuid.UUID | None,
) -> IssuedKey:
    secret = secrets.token_urlsafe(32)
    key = f"{KEY_PREFIX}{tenant_id.hex}_{secret}"
    signing_secret = secrets.token_urlsafe(32) if require_signature else None
    row = ApiKey(
        tenant_id=tenant_id,
        name=name,
        key_hash=key_hash(hmac_key, key),
        prefix=secret[:8],
        restaurant_ids=restaurant_ids,
        signing_secret=signing_secret,
        created_by_user_id=created_by,
    )
    session.add(row)
    await session.flush()
    await record(
        session,
        "api_key.created",
        "api_key",
        row.id,
        after={"name": name, "restaurant_ids": [str(r) for r in restaurant_ids]},
    )
    return IssuedKey(row, key, signing_secret)


async def list_keys(session: AsyncSession, paging: PageParams) -> list[ApiKey]:
    return list(await session.scalars(paginate(select(ApiKey), ApiKey.id, paging)))


async def revoke_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKey:
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise ApiKeyNotFound()
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        revocation.changed(session)
        await record(session, "api_key.revoked", "api_key", row.id)
    return row


def _check_signature(
    signing_secret: str, timestamp: str | None, signature: str | None, signed: bytes
) -> None:
    bad = InvalidSignature()
    if not timestamp or not signature or not signature.startswith("v1="):
        raise bad
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError as exc:
        raise bad from exc
    if age > SIGNATURE_WINDOW_SECONDS:
        raise bad
    expected = hmac.new(
        signing_secret.encode(), timestamp.encode() + b"." + signed, hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.removeprefix("v1=").encode()):
        raise bad


async def authenticate_key(
    session: AsyncSession,
    hmac_key: bytes,
    key: str,
    *,
    timestamp: str | None,
    signature: str | None,
    signed: bytes,
) -> tuple[Principal, bool]:
    """The SYSTEM principal of a live key, and whether the key signs its requests;
    `session` must be bound to the key's tenant, in a transaction of its own (the caller's
    commits the key's `last_used_at`)."""
    row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash(hmac_key, key)))
    if row is None:
        raise InvalidApiKey()
    if row.revoked_at is not None:
        raise key_revoked()
    if row.suspended_at is not None:
        raise key_suspended()
    if row.signing_secret is not None:
        _check_signature(row.signing_secret, timestamp, signature, signed)
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_GRANULARITY:
        # Coarse on purpose: a write per request would serialize a busy till's calls.
        await session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    principal = Principal(
        subject=row.id,
        role=Role.SYSTEM,
        tenant_id=row.tenant_id,
        restaurant_ids=frozenset(row.restaurant_ids),
    )
    return principal, row.signing_secret is not None
