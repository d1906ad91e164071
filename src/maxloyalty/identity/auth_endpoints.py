"""Sign-in routes: staff by password, guests by SMS code or Telegram; token refresh."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status

from maxloyalty.config import Settings
from maxloyalty.identity import guest_auth, sessions
from maxloyalty.identity.dependencies import Authorize, authenticate
from maxloyalty.identity.login import change_password as password_change
from maxloyalty.identity.login import staff_login
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.schemas import (
    CodeSentOut,
    LoginRequest,
    MeOut,
    PasswordChange,
    RefreshRequest,
    RegisterRequest,
    TelegramLoginRequest,
    VerifyRequest,
)
from maxloyalty.identity.sessions import TokenPair, user_of_refresh_token
from maxloyalty.identity.telegram import validate_init_data
from maxloyalty.identity.throttle import client_ip
from maxloyalty.kit.db import keeping_rejections
from maxloyalty.kit.errors import AppError, problem_responses
from maxloyalty.runtime import runtime_of

router = APIRouter(prefix="/api/auth", tags=["auth"], responses=problem_responses(400, 422, 429))


def per_ip(scope: str, rule: Callable[[Settings], str]) -> Any:
    """A route dependency: one hit per request from the caller's IP against `rule`, counted
    per route (`scope`); over it, 429 `rate_limited` with `Retry-After`."""

    async def limit(request: Request) -> None:
        runtime = runtime_of(request)
        await runtime.limiter.hit(rule(runtime.settings), f"{scope}-ip", client_ip())

    return Depends(limit)


def _default(settings: Settings) -> str:
    return settings.rate_limit_default


def _sign_in(settings: Settings) -> str:
    return settings.rate_limit_login


def _codes_sent(settings: Settings) -> str:
    return settings.rate_limit_otp_ip


@router.post("/login", responses=problem_responses(401, 403, 409))
async def login(body: LoginRequest, request: Request) -> TokenPair:
    """Staff (and platform owner) sign-in with email or phone and password."""
    runtime = runtime_of(request)
    async with runtime.db.session() as session, keeping_rejections(session):
        tokens = await staff_login(
            session,
            runtime.sessions,
            runtime.limiter,
            runtime.settings,
            login=body.login,
            password=body.password,
            tenant_id=body.tenant_id,
            device_fingerprint=body.device_fingerprint,
        )
        await session.commit()
        return tokens


@router.post(
    "/refresh", responses=problem_responses(401, 403), dependencies=[per_ip("refresh", _default)]
)
async def refresh(body: RefreshRequest, request: Request) -> TokenPair:
    """Rotate a refresh token. Presenting a used one revokes its whole session family."""
    runtime = runtime_of(request)
    user_id = user_of_refresh_token(body.refresh_token)
    async with runtime.db.session(user_id=user_id) as session, keeping_rejections(session):
        tokens = await sessions.refresh(session, runtime.sessions, body.refresh_token)
        await session.commit()
        return tokens


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401),
    dependencies=[per_ip("logout", _default)],
)
async def logout(body: RefreshRequest, request: Request) -> Response:
    runtime = runtime_of(request)
    user_id = user_of_refresh_token(body.refresh_token)
    async with runtime.db.session(user_id=user_id) as session:
        await sessions.logout(session, runtime.sessions, body.refresh_token)
        await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(404, 503),
    dependencies=[per_ip("otp", _codes_sent)],
)
async def register(body: RegisterRequest, request: Request) -> CodeSentOut:
    """Send a guest a one-time code by SMS (registration and sign-in alike)."""
    runtime = runtime_of(request)
    async with runtime.db.session(body.tenant_id) as session:
        sent = await guest_auth.send_code(
            session,
            runtime.settings,
            runtime.limiter,
            runtime.sms,
            runtime.otp_key,
            tenant_id=body.tenant_id,
            phone=body.phone,
            consents=body.consents,
            referral_code=body.referral_code,
        )
        await session.commit()
    return CodeSentOut(expires_in=sent.expires_in, resend_after=sent.resend_after)


@router.post("/verify", responses=problem_responses(403), dependencies=[per_ip("verify", _sign_in)])
async def verify(body: VerifyRequest, request: Request) -> TokenPair:
    """Exchange the SMS code for the guest's tokens."""
    runtime = runtime_of(request)
    async with runtime.db.session(body.tenant_id) as session, keeping_rejections(session):
        tokens = await guest_auth.verify_code(
            session,
            runtime.settings,
            runtime.sessions,
            runtime.limiter,
            runtime.otp_key,
            tenant_id=body.tenant_id,
            phone=body.phone,
            code=body.code,
        )
        await session.commit()
        return tokens


@router.post(
    "/telegram",
    responses=problem_responses(401, 403, 404, 503),
    dependencies=[per_ip("telegram", _default)],
)
async def telegram(body: TelegramLoginRequest, request: Request) -> TokenPair:
    """Sign a guest in from the Telegram Mini App with its `initData`."""
    runtime = runtime_of(request)
    token = runtime.settings.telegram_bot_token
    if token is None:
        raise AppError(
            "Telegram sign-in is not configured.", code="telegram_not_configured", status=503
        )
    tg_user = validate_init_data(
        token.get_secret_value(),
        body.init_data,
        timedelta(seconds=runtime.settings.telegram_init_data_max_age),
    )
    async with runtime.db.session(body.tenant_id) as session:
        tokens = await guest_auth.telegram_login(
            session, runtime.sessions, tenant_id=body.tenant_id, tg=tg_user
        )
        await session.commit()
        return tokens


@router.post("/password", responses=problem_responses(401, 403))
async def change_password(
    body: PasswordChange,
    principal: Annotated[
        Principal,
        Depends(Authorize(Role.OWNER, Role.RESTAURANT_ADMIN, Role.MANAGER, Role.CASHIER)),
    ],
    request: Request,
) -> TokenPair:
    """Change one's own password; every other session (and access token) stops working."""
    runtime = runtime_of(request)
    async with (
        runtime.db.session(principal.tenant_id, principal.subject) as session,
        keeping_rejections(session),
    ):
        tokens = await password_change(
            session,
            runtime.sessions,
            runtime.limiter,
            runtime.settings,
            principal,
            current=body.current_password,
            new=body.new_password,
        )
        await session.commit()
        return tokens


@router.get("/me", responses=problem_responses(401))
async def me(principal: Annotated[Principal, Depends(authenticate)]) -> MeOut:
    return MeOut(
        subject=principal.subject,
        role=principal.role,
        tenant_id=principal.tenant_id,
        restaurant_ids=sorted(principal.restaurant_ids),
    )
