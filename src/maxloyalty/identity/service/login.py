"""Staff login: email or phone plus password, with per-IP and per-account limits."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.config import Settings
from maxloyalty.identity.errors import (
    InvalidCredentials,
    NoActiveRole,
    TenantChoiceRequired,
    WrongCurrentPassword,
)
from maxloyalty.identity.models import User, UserRole
from maxloyalty.identity.principal import STAFF_ROLES, Principal, Role
from maxloyalty.identity.schemas import TokenPair
from maxloyalty.identity.service.contacts import email_index, normalize_phone, phone_index
from maxloyalty.identity.service.passwords import hash_password, verify_password
from maxloyalty.identity.service.sessions import (
    ensure_can_sign_in,
    open_session,
    principal_for,
    revoke_user_sessions,
)
from maxloyalty.identity.service.throttle import client_ip, count_failure, refuse_if_locked
from maxloyalty.kit import context
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import bind, for_update
from maxloyalty.kit.ratelimit import RateLimiter
from maxloyalty.kit.signing import SessionPolicy


def login_index(login: str) -> str:
    login = login.strip()
    return email_index(login) if "@" in login else phone_index(normalize_phone(login, "login"))


async def _choose_role(
    session: AsyncSession, user: User, tenant_id: uuid.UUID | None
) -> UserRole | None:
    """The staff role to sign in with: the requested tenant's, or the only one there is."""
    if user.role is Role.OWNER:
        return None
    roles = list(
        await session.scalars(
            select(UserRole).where(
                UserRole.user_id == user.id,
                UserRole.role.in_(STAFF_ROLES),
                UserRole.is_active.is_(True),
            )
        )
    )
    if tenant_id is not None:
        roles = [r for r in roles if r.tenant_id == tenant_id]
    if not roles:
        raise NoActiveRole()
    if len(roles) > 1:
        tenants = ", ".join(sorted(str(r.tenant_id) for r in roles))
        raise TenantChoiceRequired(
            f"You work for several networks; pass tenant_id (one of {tenants})."
        )
    return roles[0]


async def staff_login(
    session: AsyncSession,
    policy: SessionPolicy,
    limiter: RateLimiter,
    settings: Settings,
    *,
    login: str,
    password: str,
    tenant_id: uuid.UUID | None = None,
    device_fingerprint: str | None = None,
) -> TokenPair:
    await limiter.hit(settings.rate_limit_login, "login-ip", client_ip())
    index = login_index(login)
    failures = settings.rate_limit_login_failures
    await refuse_if_locked(
        session, limiter, failures, "login", index, entity_type="login", entity_id=index[:16]
    )
    # Locked (see sessions.lock_person): a password change or block committing meanwhile
    # is seen here, never outlived by the session this login opens.
    user = await session.scalar(
        for_update(select(User).where((User.email_hash == index) | (User.phone_hash == index)))
    )
    if not verify_password(user.password_hash if user else None, password):
        await count_failure(limiter, failures, "login", index)
        await record(session, "auth.login_failed", "user", user.id if user else None)
        raise InvalidCredentials()
    assert user is not None
    ensure_can_sign_in(user)
    await bind(session, user_id=user.id)
    role = await _choose_role(session, user, tenant_id)
    principal: Principal = principal_for(user, role)
    if principal.tenant_id is not None:
        await bind(session, tenant_id=principal.tenant_id)
    user.last_login_at = utcnow()
    context.actor.set(principal.actor)
    await record(session, "auth.login", "user", user.id)
    return await open_session(session, policy, principal, device_fingerprint=device_fingerprint)


async def change_password(
    session: AsyncSession,
    policy: SessionPolicy,
    limiter: RateLimiter,
    settings: Settings,
    principal: Principal,
    *,
    current: str,
    new: str,
) -> TokenPair:
    """Set a new password: every session of the person ends (in every network), and this
    caller gets a fresh one. Wrong current passwords count like failed logins."""
    failures = settings.rate_limit_login_failures
    account = str(principal.subject)
    await refuse_if_locked(
        session, limiter, failures, "password", account, entity_type="user", entity_id=account
    )
    user = await session.get(User, principal.subject)
    if user is None or not verify_password(user.password_hash, current):
        await count_failure(limiter, failures, "password", account)
        await record(session, "auth.password_change_failed", "user", principal.subject)
        raise WrongCurrentPassword()
    user.password_hash = hash_password(new)
    revoked = await revoke_user_sessions(session, user.id, None)
    await record(
        session, "auth.password_changed", "user", user.id, after={"sessions_revoked": revoked}
    )
    return await open_session(session, policy, principal)
