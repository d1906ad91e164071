"""Guest sign-in: a one-time code by SMS (registration and sign-in alike), or Telegram."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, status

from maxloyalty.guests import sign_in
from maxloyalty.guests.schemas import (
    CodeSentOut,
    RegisterRequest,
    TelegramLoginRequest,
    VerifyRequest,
)
from maxloyalty.identity.dependencies import codes_sent_rule, default_rule, per_ip, sign_in_rule
from maxloyalty.identity.sessions import TokenPair
from maxloyalty.identity.telegram import validate_init_data
from maxloyalty.kit.db import keeping_rejections
from maxloyalty.kit.errors import AppError, problem_responses
from maxloyalty.runtime import runtime_of

router = APIRouter(prefix="/api/auth", tags=["auth"], responses=problem_responses(400, 422, 429))


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(404, 503),
    dependencies=[per_ip("otp", codes_sent_rule)],
)
async def register(body: RegisterRequest, request: Request) -> CodeSentOut:
    """Send a guest a one-time code by SMS (registration and sign-in alike)."""
    runtime = runtime_of(request)
    async with runtime.db.session(body.tenant_id) as session:
        sent = await sign_in.send_code(
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


@router.post(
    "/verify", responses=problem_responses(403), dependencies=[per_ip("verify", sign_in_rule)]
)
async def verify(body: VerifyRequest, request: Request) -> TokenPair:
    """Exchange the SMS code for the guest's tokens."""
    runtime = runtime_of(request)
    async with runtime.db.session(body.tenant_id) as session, keeping_rejections(session):
        tokens = await sign_in.verify_code(
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
    dependencies=[per_ip("telegram", default_rule)],
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
        tokens = await sign_in.telegram_login(
            session, runtime.sessions, tenant_id=body.tenant_id, tg=tg_user
        )
        await session.commit()
        return tokens
