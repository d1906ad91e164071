"""Sign-in routes for staff (password), token refresh and sign-out, the caller's own view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from maxloyalty.identity.auth import PUBLIC_REFUSALS, PasswordHolder
from maxloyalty.identity.dependencies import (
    PublicSession,
    TenantSession,
    authenticate,
    default_rule,
    per_ip,
)
from maxloyalty.identity.errors import (
    CREDENTIAL_REFUSALS,
    AccountBlocked,
    AccountLocked,
    InvalidCredentials,
    InvalidPhone,
    InvalidRefreshToken,
    NoActiveRole,
    RefreshTokenReused,
    TenantChoiceRequired,
    WrongCurrentPassword,
)
from maxloyalty.identity.principal import Principal
from maxloyalty.identity.schemas import (
    LoginRequest,
    MeOut,
    PasswordChange,
    RefreshRequest,
    TokenPair,
)
from maxloyalty.identity.service import sessions
from maxloyalty.identity.service.login import change_password as password_change
from maxloyalty.identity.service.login import staff_login
from maxloyalty.kit.errors import problem_responses
from maxloyalty.runtime import runtime_of

router = APIRouter(prefix="/api/auth", tags=["auth"], responses=problem_responses(*PUBLIC_REFUSALS))


@router.post(
    "/login",
    responses=problem_responses(
        InvalidCredentials,
        AccountBlocked,
        NoActiveRole,
        TenantChoiceRequired,
        AccountLocked,
        InvalidPhone,
    ),
)
async def login(body: LoginRequest, session: PublicSession, request: Request) -> TokenPair:
    """Staff (and platform owner) sign-in with email or phone and password."""
    runtime = runtime_of(request)
    return await staff_login(
        session,
        runtime.sessions,
        runtime.limiter,
        runtime.settings,
        login=body.login,
        password=body.password,
        tenant_id=body.tenant_id,
        device_fingerprint=body.device_fingerprint,
    )


@router.post(
    "/refresh",
    responses=problem_responses(
        InvalidRefreshToken, RefreshTokenReused, AccountBlocked, NoActiveRole
    ),
    dependencies=[per_ip("refresh", default_rule)],
)
async def refresh(body: RefreshRequest, session: PublicSession, request: Request) -> TokenPair:
    """Rotate a refresh token. Presenting a used one revokes its whole session family."""
    return await sessions.refresh(session, runtime_of(request).sessions, body.refresh_token)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(InvalidRefreshToken),
    dependencies=[per_ip("logout", default_rule)],
)
async def logout(body: RefreshRequest, session: PublicSession, request: Request) -> Response:
    await sessions.logout(session, runtime_of(request).sessions, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password",
    responses=problem_responses(*CREDENTIAL_REFUSALS, WrongCurrentPassword, AccountLocked),
)
async def change_password(
    body: PasswordChange,
    principal: PasswordHolder,
    session: TenantSession,
    request: Request,
) -> TokenPair:
    """Change one's own password; every other session (and access token) stops working."""
    runtime = runtime_of(request)
    return await password_change(
        session,
        runtime.sessions,
        runtime.limiter,
        runtime.settings,
        principal,
        current=body.current_password,
        new=body.new_password,
    )


@router.get("/me", responses=problem_responses(*CREDENTIAL_REFUSALS))
async def me(principal: Annotated[Principal, Depends(authenticate)]) -> MeOut:
    return MeOut(
        subject=principal.subject,
        role=principal.role,
        tenant_id=principal.tenant_id,
        restaurant_ids=sorted(principal.restaurant_ids),
    )
