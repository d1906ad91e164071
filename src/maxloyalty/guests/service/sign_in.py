"""Guest sign-in: a one-time code by SMS, or Telegram Mini App initData.

Codes are 6 digits from `secrets`, stored as an HMAC bound to the code's row, valid for a
few minutes, accepted once, and dead after a few wrong tries. Sending is limited per phone
and per IP, with a cooldown between sends, so nobody can drain the SMS budget.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.config import Settings
from maxloyalty.guests.errors import (
    ConsentRequired,
    GuestBlocked,
    OtpCooldown,
    OtpInvalid,
    TelegramNotConfigured,
)
from maxloyalty.guests.models import RegistrationSource
from maxloyalty.guests.schemas import Consents
from maxloyalty.guests.service.cards import ensure_card
from maxloyalty.identity.models import Consent, ConsentKind, OtpCode, User, UserRole
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.schemas import TokenPair
from maxloyalty.identity.service.contacts import normalize_phone, phone_index
from maxloyalty.identity.service.sessions import ensure_can_sign_in, open_session
from maxloyalty.identity.service.telegram import validate_init_data
from maxloyalty.identity.service.throttle import count_failure, refuse_if_locked
from maxloyalty.integrations.sms import SmsError, SmsSender
from maxloyalty.integrations.sms.base import mask_phone
from maxloyalty.integrations.sms.errors import SmsRejected, SmsUnavailable
from maxloyalty.kit import context
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import bind, for_update
from maxloyalty.kit.ids import uuid7
from maxloyalty.kit.ratelimit import RateLimiter
from maxloyalty.kit.signing import SessionPolicy
from maxloyalty.loyalty.models import CardMode, LoyaltySystem
from maxloyalty.network.errors import TenantNotFound
from maxloyalty.network.models import Tenant

# A network's own bot token, if it connected one. Its bots live in integrations.telegram,
# above this package, which installs the lookup at start-up (`use_tenant_bot_tokens`).
BotTokenLookup = Callable[[AsyncSession, uuid.UUID], Awaitable[str | None]]
_tenant_bot_token: BotTokenLookup | None = None


def use_tenant_bot_tokens(lookup: BotTokenLookup) -> None:
    global _tenant_bot_token
    _tenant_bot_token = lookup


async def bot_token_for(
    session: AsyncSession, settings: Settings, tenant_id: uuid.UUID
) -> str | None:
    """The token that signs the network's Mini App: its own bot's, else the global one.
    `session` must be bound to the tenant."""
    if _tenant_bot_token is not None and (token := await _tenant_bot_token(session, tenant_id)):
        return token
    glob = settings.telegram_bot_token
    return None if glob is None else glob.get_secret_value()


@dataclass(frozen=True)
class CodeSent:
    expires_in: int
    resend_after: int


def _code_hash(key: bytes, otp_id: uuid.UUID, code: str) -> str:
    return hmac.new(key, f"{otp_id}:{code}".encode(), hashlib.sha256).hexdigest()


async def _tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise TenantNotFound()
    return tenant


async def send_code(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    sms: SmsSender,
    hmac_key: bytes,
    *,
    tenant_id: uuid.UUID,
    phone: str,
    consents: Consents,
    referral_code: str | None = None,
) -> CodeSent:
    """Start a registration (or sign-in): send a code to `phone` for network `tenant_id`."""
    await bind(session, tenant_id=tenant_id)
    e164 = normalize_phone(phone)
    if not (consents.privacy_policy and consents.personal_data):
        raise ConsentRequired()
    tenant = await _tenant(session, tenant_id)
    index = phone_index(e164)

    now = utcnow()
    last = await session.scalar(
        select(OtpCode.created_at)
        .where(OtpCode.phone_hash == index)
        .order_by(OtpCode.created_at.desc())
        .limit(1)
    )
    cooldown = timedelta(seconds=settings.otp_resend_seconds)
    if last is not None and now - last < cooldown:
        wait = math.ceil((last + cooldown - now).total_seconds())
        raise OtpCooldown(
            f"A code was sent just now; ask again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    await limiter.hit(settings.rate_limit_otp_phone, "otp-phone", index)
    # A new code retires every earlier one for this phone.
    await session.execute(
        update(OtpCode)
        .where(OtpCode.phone_hash == index, OtpCode.consumed_at.is_(None))
        .values(consumed_at=now)
    )
    code = f"{secrets.randbelow(1_000_000):06d}"
    otp = OtpCode(
        id=uuid7(),
        tenant_id=tenant.id,
        phone_hash=index,
        expires_at=now + timedelta(seconds=settings.otp_ttl_seconds),
        ip_address=context.client.get().ip,
        registration={
            "consents": consents.model_dump(),
            "referral_code": referral_code,
        },
    )
    otp.code_hash = _code_hash(hmac_key, otp.id, code)
    session.add(otp)
    await session.flush()
    try:
        await sms.send(e164, f"{tenant.name}: код входа {code}. Никому его не сообщайте.")
    except SmsError as exc:
        raise (SmsUnavailable() if exc.retryable else SmsRejected()) from exc
    await record(session, "auth.otp_sent", "phone", mask_phone(e164))
    return CodeSent(expires_in=settings.otp_ttl_seconds, resend_after=settings.otp_resend_seconds)


async def _issue_network_card(session: AsyncSession, user: User, how: str) -> None:
    """A guest who signs up gets the network's card at once (when the programme issues one
    card per network; per-restaurant cards are issued at the restaurant)."""
    system = await session.scalar(
        select(LoyaltySystem).where(
            LoyaltySystem.restaurant_id.is_(None), LoyaltySystem.mode == CardMode.UNIFIED
        )
    )
    if system is not None:
        source = RegistrationSource.TELEGRAM if "telegram" in how else RegistrationSource.LINK
        await ensure_card(session, system, user.id, source)


async def _guest_role(session: AsyncSession, user: User, tenant_id: uuid.UUID) -> UserRole:
    role = await session.scalar(
        select(UserRole).where(
            UserRole.tenant_id == tenant_id,
            UserRole.user_id == user.id,
            UserRole.role == Role.GUEST,
        )
    )
    if role is None:
        role = UserRole(tenant_id=tenant_id, user_id=user.id, role=Role.GUEST)
        session.add(role)
        await session.flush()
        await record(session, "guest.joined", "user", user.id)
    if not role.is_active:
        raise GuestBlocked()
    return role


async def join_as_guest(session: AsyncSession, user: User, tenant_id: uuid.UUID, how: str) -> None:
    """Make `user` a guest of the network with its card, as signing in does (refused for a
    blocked account or membership). `how` names the way in: `sms_login`, `telegram_…`."""
    ensure_can_sign_in(user)
    await bind(session, user_id=user.id)
    await _guest_role(session, user, tenant_id)
    await _issue_network_card(session, user, how)


async def _sign_in_guest(
    session: AsyncSession, policy: SessionPolicy, user: User, tenant_id: uuid.UUID, how: str
) -> TokenPair:
    await join_as_guest(session, user, tenant_id, how)
    user.last_login_at = utcnow()
    principal = Principal(subject=user.id, role=Role.GUEST, tenant_id=tenant_id)
    context.actor.set(principal.actor)
    await record(session, f"auth.guest_{how}", "user", user.id)
    return await open_session(session, policy, principal)


async def _failed_verify(
    session: AsyncSession, limiter: RateLimiter, rule: str, index: str, e164: str
) -> None:
    await count_failure(limiter, rule, "otp", index)
    await record(session, "auth.otp_failed", "phone", mask_phone(e164))


async def verify_code(
    session: AsyncSession,
    settings: Settings,
    policy: SessionPolicy,
    limiter: RateLimiter,
    hmac_key: bytes,
    *,
    tenant_id: uuid.UUID,
    phone: str,
    code: str,
) -> TokenPair:
    await bind(session, tenant_id=tenant_id)
    e164 = normalize_phone(phone)
    index = phone_index(e164)
    # Wrong codes count against the phone like failed logins against an account: the
    # per-code cap alone would let a caller try every fresh code it asks for.
    failures = settings.rate_limit_login_failures
    await refuse_if_locked(
        session, limiter, failures, "otp", index, entity_type="phone", entity_id=mask_phone(e164)
    )
    now = utcnow()
    otp = await session.scalar(
        for_update(
            select(OtpCode)
            .where(OtpCode.phone_hash == index, OtpCode.consumed_at.is_(None))
            .order_by(OtpCode.created_at.desc())
            .limit(1)
        )
    )
    if otp is None or otp.expires_at <= now or otp.attempts >= settings.otp_max_attempts:
        await _failed_verify(session, limiter, failures, index, e164)
        raise OtpInvalid()
    if not hmac.compare_digest(otp.code_hash, _code_hash(hmac_key, otp.id, code)):
        await _failed_verify(session, limiter, failures, index, e164)
        otp.attempts += 1
        left = settings.otp_max_attempts - otp.attempts
        if left <= 0:
            otp.consumed_at = now  # the code dies; a new one must be requested
        raise OtpInvalid(
            f"The code is wrong; {left} attempts left."
            if left
            else "The code is wrong; request a new one."
        )
    otp.consumed_at = now

    user = await session.scalar(select(User).where(User.phone_hash == index))
    if user is None:
        user = User(
            phone=e164,
            phone_hash=index,
            role=Role.GUEST,
            phone_verified=True,
        )
        session.add(user)
        await session.flush()
        await record(session, "user.created", "user", user.id, after={"role": "GUEST"})
    user.phone_verified = True
    consents = Consents.model_validate(otp.registration.get("consents", {}))
    ip = context.client.get().ip
    for kind, granted in (
        (ConsentKind.PRIVACY_POLICY, consents.privacy_policy),
        (ConsentKind.PERSONAL_DATA, consents.personal_data),
        (ConsentKind.MARKETING, consents.marketing),
    ):
        session.add(
            Consent(
                tenant_id=tenant_id,
                user_id=user.id,
                kind=kind,
                granted=granted,
                ip_address=ip,
                source="SMS_REGISTRATION",
            )
        )
    return await _sign_in_guest(session, policy, user, tenant_id, "sms_login")


async def telegram_login(
    session: AsyncSession,
    settings: Settings,
    policy: SessionPolicy,
    *,
    tenant_id: uuid.UUID,
    init_data: str,
) -> TokenPair:
    """Sign a guest in by the Mini App's `initData`, signed with the chain's bot token (its
    own connected bot's, else the installation's)."""
    await bind(session, tenant_id=tenant_id)
    await _tenant(session, tenant_id)
    token = await bot_token_for(session, settings, tenant_id)
    if token is None:
        raise TelegramNotConfigured()
    tg = validate_init_data(
        token, init_data, timedelta(seconds=settings.telegram_init_data_max_age)
    )
    user = await session.scalar(select(User).where(User.telegram_id == tg.id))
    if user is None:
        user = User(telegram_id=tg.id, role=Role.GUEST)
        session.add(user)
        await session.flush()
        await record(session, "user.created", "user", user.id, after={"role": "GUEST"})
    return await _sign_in_guest(session, policy, user, tenant_id, "telegram_login")
