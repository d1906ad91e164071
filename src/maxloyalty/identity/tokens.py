"""JWT access tokens (HS256 with the installation's secret key)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import jwt

from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import Unauthorized

ALGORITHM = "HS256"
AUDIENCE = "maxloyalty"


def issue_access_token(secret: str, principal: Principal, ttl: timedelta) -> str:
    now = utcnow()
    claims: dict[str, Any] = {
        "sub": str(principal.subject),
        "role": principal.role.value,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if principal.tenant_id is not None:
        claims["tid"] = str(principal.tenant_id)
    if principal.restaurant_ids:
        claims["rids"] = sorted(str(r) for r in principal.restaurant_ids)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["sub", "role", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired.", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The access token is invalid.", code="invalid_token") from exc
    try:
        return Principal(
            subject=uuid.UUID(claims["sub"]),
            role=Role(claims["role"]),
            tenant_id=uuid.UUID(claims["tid"]) if "tid" in claims else None,
            restaurant_ids=frozenset(uuid.UUID(r) for r in claims.get("rids", [])),
        )
    except (ValueError, TypeError) as exc:
        raise Unauthorized("The access token is invalid.", code="invalid_token") from exc
