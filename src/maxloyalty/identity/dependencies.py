"""Route-level authentication and authorization, declared as dependencies.

`Authorize(*roles, permission=...)` admits the listed roles, or anyone holding a live
grant of `permission` in the tenant (scoped to the route's `restaurant_id` when the grant
names restaurants).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.config import Settings
from maxloyalty.identity.errors import (
    ApiKeyRevoked,
    ApiKeySuspended,
    NotAuthenticated,
    RoleForbidden,
    TenantRequired,
)
from maxloyalty.identity.models import UserPermission
from maxloyalty.identity.principal import STAFF_ROLES, Principal, Role
from maxloyalty.identity.service import revocation
from maxloyalty.identity.service.api_keys import (
    KEY_PREFIX,
    authenticate_key,
    key_hash,
    tenant_of_key,
)
from maxloyalty.identity.service.throttle import client_ip
from maxloyalty.identity.service.tokens import decode_access_token
from maxloyalty.kit import context
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import unit_of_work
from maxloyalty.runtime import Runtime, runtime_of

_bearer = HTTPBearer(
    auto_error=False, description="Access token from /api/auth/login, or an API key (mlk_…)"
)


async def _signed_content(request: Request) -> bytes:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    # The Idempotency-Key is signed too: a captured request replayed under a new key would
    # otherwise be a new operation (a second refund).
    key = request.headers.get("idempotency-key", "")
    return f"{request.method}.{path}.{key}.".encode() + await request.body()


async def _from_api_key(request: Request, runtime: Runtime, key: str) -> Principal:
    tenant_id = tenant_of_key(key)
    remembered = f"api_key:{key_hash(runtime.api_key_key, key)}"
    known = revocation.facts.get(remembered)
    if isinstance(known, tuple):
        refusal, detail = known
        raise refusal(detail)
    if isinstance(known, Principal):
        return known
    stamp = revocation.facts.stamp()
    try:
        async with runtime.db.transaction(tenant_id) as session:
            principal, signs = await authenticate_key(
                session,
                runtime.api_key_key,
                key,
                timestamp=request.headers.get("x-ml-timestamp"),
                signature=request.headers.get("x-ml-signature"),
                signed=await _signed_content(request),
            )
    except (ApiKeyRevoked, ApiKeySuspended) as refused:
        revocation.facts.put(remembered, (type(refused), refused.detail), stamp)
        raise
    # Keys that sign their requests are checked in full every time.
    if not signs:
        revocation.facts.put(remembered, principal, stamp)
    return principal


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise NotAuthenticated()
    runtime = runtime_of(request)
    token = credentials.credentials
    if token.startswith(KEY_PREFIX):
        principal = await _from_api_key(request, runtime, token)
    else:
        principal, session_id = decode_access_token(runtime.sessions.keys, token)
        await revocation.ensure_session_good(runtime.db, principal, session_id)
    context.actor.set(principal.actor)
    return principal


async def _holds_permission(request: Request, principal: Principal, permission: str) -> bool:
    if principal.tenant_id is None:
        return False
    now = utcnow()
    async with runtime_of(request).db.session(principal.tenant_id) as session:
        grants = list(
            await session.scalars(
                select(UserPermission).where(
                    UserPermission.user_id == principal.subject,
                    UserPermission.permission == permission,
                    UserPermission.revoked_at.is_(None),
                    or_(UserPermission.expires_at.is_(None), UserPermission.expires_at > now),
                )
            )
        )
    restaurant = request.path_params.get("restaurant_id")
    for grant in grants:
        if not grant.resource_ids or grant.resource_type != "restaurant":
            return True
        if restaurant is not None and uuid.UUID(str(restaurant)) in grant.resource_ids:
            return True
    return False


class Authorize:
    """Admit only the given roles (or holders of `permission`); tenant roles need a tenant."""

    def __init__(self, *roles: Role, permission: str | None = None) -> None:
        self.roles = frozenset(roles)
        self.permission = permission

    async def __call__(
        self, request: Request, principal: Annotated[Principal, Depends(authenticate)]
    ) -> Principal:
        if principal.role is not Role.OWNER and principal.tenant_id is None:
            raise TenantRequired()
        if principal.role in self.roles:
            return principal
        # A timed grant stretches a staff member's reach; it never lifts a guest or a till.
        if (
            self.permission
            and principal.role in STAFF_ROLES
            and await _holds_permission(request, principal, self.permission)
        ):
            return principal
        raise RoleForbidden()


async def tenant_session(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> AsyncIterator[AsyncSession]:
    """A session confined (by row-level security) to the caller's tenant, in the request's
    one unit of work."""
    db = runtime_of(request).db
    async with db.session(principal.tenant_id, principal.subject) as session, unit_of_work(session):
        yield session


# scope="function": the unit of work ends (commits) before the answer is sent, not after.
TenantSession = Annotated[AsyncSession, Depends(tenant_session, scope="function")]


async def public_session(request: Request) -> AsyncIterator[AsyncSession]:
    """For routes with no signed-in caller (sign-in, a till's webhook): bound to no tenant
    until the service learns one (`kit.db.bind`)."""
    async with runtime_of(request).db.session() as session, unit_of_work(session):
        yield session


PublicSession = Annotated[AsyncSession, Depends(public_session, scope="function")]


async def platform_session(
    request: Request, _owner: Annotated[Principal, Depends(Authorize(Role.OWNER))]
) -> AsyncIterator[AsyncSession]:
    """The platform owner's cross-tenant session. Every use is in the activity log, committed
    before the route runs, so that a read which fails half-way is on record too."""
    route = getattr(request.scope.get("route"), "path", request.url.path)
    async with runtime_of(request).db.platform_session() as session:
        await record(
            session,
            "platform.read" if request.method in {"GET", "HEAD"} else "platform.write",
            "route",
            f"{request.method} {route}"[:64],
            after={"path": request.url.path, "query": dict(request.query_params)},
        )
        await session.commit()
        async with unit_of_work(session):
            yield session


PlatformSession = Annotated[AsyncSession, Depends(platform_session, scope="function")]


def per_ip(scope: str, rule: Callable[[Settings], str]) -> Any:
    """A route dependency: one hit per request from the caller's IP against `rule`, counted
    per route (`scope`); over it, 429 `rate_limited` with `Retry-After`."""

    async def limit(request: Request) -> None:
        runtime = runtime_of(request)
        await runtime.limiter.hit(rule(runtime.settings), f"{scope}-ip", client_ip())

    return Depends(limit)


def default_rule(settings: Settings) -> str:
    return settings.rate_limit_default


def sign_in_rule(settings: Settings) -> str:
    return settings.rate_limit_login


def codes_sent_rule(settings: Settings) -> str:
    return settings.rate_limit_otp_ip
