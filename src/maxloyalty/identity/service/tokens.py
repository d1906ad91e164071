"""JWT access tokens (HS256), signed with the current key and checked against the current
and previous ones, so keys rotate without logging everybody out."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import jwt

from maxloyalty.identity.errors import InvalidToken, TokenExpired
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.signing import TokenKeys

ALGORITHM = "HS256"
AUDIENCE = "maxloyalty"


def issue_access_token(
    keys: TokenKeys, principal: Principal, ttl: timedelta, session_id: uuid.UUID
) -> str:
    now = utcnow()
    claims: dict[str, Any] = {
        "sub": str(principal.subject),
        "role": principal.role.value,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
        # Every request checks that this session still stands (identity.revocation).
        "sid": str(session_id),
    }
    if principal.tenant_id is not None:
        claims["tid"] = str(principal.tenant_id)
    if principal.restaurant_ids:
        claims["rids"] = sorted(str(r) for r in principal.restaurant_ids)
    kid, secret = keys.signing()
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})


def decode_access_token(keys: TokenKeys, token: str) -> tuple[Principal, uuid.UUID]:
    """The token's principal and the id of the session it was issued in."""
    invalid = InvalidToken()
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise invalid from exc
    secret = keys.verifying(kid) if isinstance(kid, str) else None
    if secret is None:
        raise invalid
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["sub", "role", "exp", "iat", "sid"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired() from exc
    except jwt.PyJWTError as exc:
        raise invalid from exc
    try:
        principal = Principal(
            subject=uuid.UUID(claims["sub"]),
            role=Role(claims["role"]),
            tenant_id=uuid.UUID(claims["tid"]) if "tid" in claims else None,
            restaurant_ids=frozenset(uuid.UUID(r) for r in claims.get("rids", [])),
        )
        return principal, uuid.UUID(claims["sid"])
    except (ValueError, TypeError, AttributeError) as exc:
        raise invalid from exc
