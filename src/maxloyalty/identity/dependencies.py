"""Route-level authentication and authorization, declared as dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.tokens import decode_access_token
from maxloyalty.kit import context
from maxloyalty.kit.errors import Forbidden, Unauthorized
from maxloyalty.runtime import runtime_of

_bearer = HTTPBearer(auto_error=False, description="Access token from /api/auth/login")


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("Authentication is required.", code="not_authenticated")
    secret = runtime_of(request).settings.secret("secret_key")
    principal = decode_access_token(secret, credentials.credentials)
    context.actor.set(principal.actor)
    return principal


class Authorize:
    """Admit only the given roles; tenant roles must carry a tenant."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in self.roles:
            raise Forbidden("Your role may not do this.", code="role_forbidden")
        if principal.role is not Role.OWNER and principal.tenant_id is None:
            raise Forbidden("The token carries no tenant.", code="tenant_required")
        return principal


async def tenant_session(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> AsyncIterator[AsyncSession]:
    """A session confined (by row-level security) to the caller's tenant."""
    async with runtime_of(request).db.session(principal.tenant_id) as session:
        yield session


TenantSession = Annotated[AsyncSession, Depends(tenant_session)]
