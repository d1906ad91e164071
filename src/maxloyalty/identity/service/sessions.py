"""Sessions: access tokens plus rotating refresh tokens with reuse detection.

A refresh token is `<user id hex>.<random>`; only its HMAC is stored. The user id lets the
server open that user's session rows under row-level security before it knows anything
else; a forged user id simply finds no matching hash.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.identity.errors import (
    AccountBlocked,
    InvalidRefreshToken,
    NoActiveRole,
    RefreshTokenReused,
)
from maxloyalty.identity.models import SessionEnd, User, UserRole, UserSession
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.schemas import TokenPair
from maxloyalty.identity.service import revocation
from maxloyalty.identity.service.tokens import issue_access_token
from maxloyalty.kit import context
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import bind, for_update
from maxloyalty.kit.ids import uuid7
from maxloyalty.kit.signing import SessionPolicy


def _invalid_refresh() -> InvalidRefreshToken:
    return InvalidRefreshToken()


def user_of_refresh_token(token: str) -> uuid.UUID:
    head, _, rest = token.partition(".")
    try:
        user_id = uuid.UUID(hex=head)
    except ValueError as exc:
        raise _invalid_refresh() from exc
    if not rest:
        raise _invalid_refresh()
    return user_id


def principal_for(user: User, membership: UserRole | None) -> Principal:
    if user.role is Role.OWNER:
        return Principal(subject=user.id, role=Role.OWNER, tenant_id=None)
    if membership is None or not membership.is_active:
        raise NoActiveRole("You have no active role in this network.")
    return Principal(
        subject=user.id,
        role=membership.role,
        tenant_id=membership.tenant_id,
        restaurant_ids=frozenset(membership.restaurant_ids),
    )


def ensure_can_sign_in(user: User) -> None:
    if user.is_blocked or not user.is_active or user.erased_at is not None:
        raise AccountBlocked()


async def open_session(
    session: AsyncSession,
    policy: SessionPolicy,
    principal: Principal,
    *,
    family_id: uuid.UUID | None = None,
    device_fingerprint: str | None = None,
) -> TokenPair:
    """Store a new refresh token (a new family unless rotating) and answer both tokens."""
    refresh = f"{principal.subject.hex}.{secrets.token_urlsafe(32)}"
    client = context.client.get()
    row = UserSession(
        user_id=principal.subject,
        tenant_id=principal.tenant_id,
        role=principal.role,
        family_id=family_id or uuid7(),
        refresh_token_hash=policy.token_hash(refresh),
        ip_address=client.ip,
        user_agent=client.user_agent[:500] if client.user_agent else None,
        device_fingerprint=device_fingerprint,
        expires_at=utcnow() + policy.refresh_ttl,
    )
    session.add(row)
    await session.flush()
    access = issue_access_token(policy.keys, principal, policy.access_ttl, session_id=row.id)
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(policy.access_ttl.total_seconds()),
    )


async def membership(
    session: AsyncSession, user_id: uuid.UUID, tenant_id: uuid.UUID | None, role: Role
) -> UserRole | None:
    if tenant_id is None:
        return None
    return await session.scalar(
        select(UserRole).where(
            UserRole.user_id == user_id, UserRole.tenant_id == tenant_id, UserRole.role == role
        )
    )


async def lock_person(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Serialize what opens and what revokes a person's sessions: a rotation committing
    while a revocation runs would otherwise insert a session row the revoking UPDATE never
    sees (each locks the person first, then touches sessions)."""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())


async def refresh(session: AsyncSession, policy: SessionPolicy, token: str) -> TokenPair:
    """Rotate `token`. A token used before revokes its whole family (a `Rejection`)."""
    user_id = user_of_refresh_token(token)
    await bind(session, user_id=user_id)
    await lock_person(session, user_id)
    row = await session.scalar(
        for_update(
            select(UserSession).where(UserSession.refresh_token_hash == policy.token_hash(token))
        )
    )
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        raise _invalid_refresh()
    if row.tenant_id is not None:
        await bind(session, tenant_id=row.tenant_id)
    if row.replaced_at is not None:
        await revoke_family(session, row.user_id, row.family_id, SessionEnd.REUSE_DETECTED)
        await record(session, "auth.refresh_reused", "user_session", row.family_id)
        raise RefreshTokenReused()
    user = await session.get(User, row.user_id)
    if user is None:
        raise _invalid_refresh()
    ensure_can_sign_in(user)
    principal = principal_for(user, await membership(session, user.id, row.tenant_id, row.role))
    row.replaced_at = row.last_activity_at = utcnow()
    return await open_session(
        session,
        policy,
        principal,
        family_id=row.family_id,
        device_fingerprint=row.device_fingerprint,
    )


async def resume(session: AsyncSession, policy: SessionPolicy, token: str) -> Principal:
    """The principal of a page's session cookie (a refresh token the page keeps and never
    rotates: parallel requests of one page must not race a rotation). Checked against its
    row on every request, so a revocation or a block stops the page at once."""
    user_id = user_of_refresh_token(token)
    await bind(session, user_id=user_id)
    row = await session.scalar(
        select(UserSession).where(UserSession.refresh_token_hash == policy.token_hash(token))
    )
    if row is None or row.revoked_at or row.replaced_at or row.expires_at <= utcnow():
        raise _invalid_refresh()
    if row.tenant_id is not None:
        await bind(session, tenant_id=row.tenant_id)
    user = await session.get(User, row.user_id)
    if user is None:
        raise _invalid_refresh()
    ensure_can_sign_in(user)
    return principal_for(user, await membership(session, user.id, row.tenant_id, row.role))


async def revoke_family(
    session: AsyncSession, user_id: uuid.UUID, family_id: uuid.UUID, reason: SessionEnd
) -> None:
    await lock_person(session, user_id)
    revocation.changed(session)
    await session.execute(
        update(UserSession)
        .where(UserSession.family_id == family_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


async def logout(session: AsyncSession, policy: SessionPolicy, token: str) -> None:
    await bind(session, user_id=user_of_refresh_token(token))
    row = await session.scalar(
        select(UserSession).where(UserSession.refresh_token_hash == policy.token_hash(token))
    )
    if row is None:
        raise _invalid_refresh()
    if row.tenant_id is not None:
        await bind(session, tenant_id=row.tenant_id)
    await revoke_family(session, row.user_id, row.family_id, SessionEnd.LOGOUT)
    await record(session, "auth.logout", "user_session", row.family_id)


async def revoke_user_sessions(
    session: AsyncSession, user_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> int:
    """Revoke a user's live sessions (in one tenant, or all when `tenant_id` is None)."""
    query = update(UserSession).where(
        UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
    )
    if tenant_id is not None:
        query = query.where(UserSession.tenant_id == tenant_id)
    await lock_person(session, user_id)
    revocation.changed(session)
    result = await session.execute(
        query.values(revoked_at=utcnow(), revoked_reason=SessionEnd.REVOKED)
    )
    return int(getattr(result, "rowcount", 0) or 0)
