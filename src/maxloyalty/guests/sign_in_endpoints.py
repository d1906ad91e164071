"""Guest sign-in: a one-time code by SMS (registration and sign-in alike), or Telegram."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from maxloyalty.guests.errors import (
    CodeSpaceExhausted,
    ConsentRequired,
    GuestBlocked,
    OtpCooldown,
    OtpInvalid,
    TelegramNotConfigured,
)
from maxloyalty.guests.schemas import (
    CodeSentOut,
    RegisterRequest,
    TelegramLoginRequest,
    VerifyRequest,
)
from maxloyalty.guests.service import sign_in
from maxloyalty.identity.auth import PUBLIC_REFUSALS
from maxloyalty.identity.dependencies import (
    PublicSession,
    codes_sent_rule,
    default_rule,
    per_ip,
    sign_in_rule,
)
from maxloyalty.identity.errors import AccountBlocked, AccountLocked, InvalidInitData, InvalidPhone
from maxloyalty.identity.schemas import TokenPair
from maxloyalty.integrations.sms.errors import SmsRejected, SmsUnavailable
from maxloyalty.kit.errors import problem_responses
from maxloyalty.network.errors import TenantNotFound
from maxloyalty.runtime import runtime_of

router = APIRouter(prefix="/api/auth", tags=["auth"], responses=problem_responses(*PUBLIC_REFUSALS))


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(
        InvalidPhone, ConsentRequired, TenantNotFound, OtpCooldown, SmsUnavailable, SmsRejected
    ),
    dependencies=[per_ip("otp", codes_sent_rule)],
)
async def register(body: RegisterRequest, session: PublicSession, request: Request) -> CodeSentOut:
    """Send a guest a one-time code by SMS (registration and sign-in alike)."""
    runtime = runtime_of(request)
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
    return CodeSentOut(expires_in=sent.expires_in, resend_after=sent.resend_after)


@router.post(
    "/verify",
    responses=problem_responses(
        InvalidPhone, OtpInvalid, AccountLocked, AccountBlocked, GuestBlocked, CodeSpaceExhausted
    ),
    dependencies=[per_ip("verify", sign_in_rule)],
)
async def verify(body: VerifyRequest, session: PublicSession, request: Request) -> TokenPair:
    """Exchange the SMS code for the guest's tokens."""
    runtime = runtime_of(request)
    return await sign_in.verify_code(
        session,
        runtime.settings,
        runtime.sessions,
        runtime.limiter,
        runtime.otp_key,
        tenant_id=body.tenant_id,
        phone=body.phone,
        code=body.code,
    )


@router.post(
    "/telegram",
    responses=problem_responses(
        InvalidInitData,
        AccountBlocked,
        GuestBlocked,
        TenantNotFound,
        TelegramNotConfigured,
        CodeSpaceExhausted,
    ),
    dependencies=[per_ip("telegram", default_rule)],
)
async def telegram(
    body: TelegramLoginRequest, session: PublicSession, request: Request
) -> TokenPair:
    """Sign a guest in from the Telegram Mini App with its `initData`."""
    runtime = runtime_of(request)
    return await sign_in.telegram_login(
        session,
        runtime.settings,
        runtime.sessions,
        tenant_id=body.tenant_id,
        init_data=body.init_data,
    )
