"""Whether a credential is still good, asked on every authenticated request.

An access token is good while its session is not revoked, its person is neither blocked nor
erased, and their role in the token's tenant is still active with the same restaurants; an
API key while it is neither revoked nor switched off. PostgreSQL holds the answer; each
process remembers it for at most `FACT_SECONDS`, so whatever an admin revokes is refused by
every process within that time, with or without Redis, and a busy till costs one query a
second rather than one a request. A process that commits a revocation forgets what it
remembered at once (`changed`), so there it acts on the next request.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from maxloyalty.identity.errors import SessionRevoked
from maxloyalty.identity.models import User, UserRole, UserSession
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.db import Database
from maxloyalty.kit.memo import Memo

FACT_SECONDS = 1.0
_CHANGED = "auth_changed"

# Per process: session id → still good; API key digest → its principal, or the code and
# detail of its refusal.
facts: Memo[Any] = Memo(FACT_SECONDS)


def changed(session: AsyncSession) -> None:
    """Note that `session`'s transaction revokes a credential: once it commits, this
    process forgets every remembered answer."""
    session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _forget_after_revocation(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        facts.clear()


@event.listens_for(Session, "after_rollback")
def _nothing_revoked(session: Session) -> None:
    session.info.pop(_CHANGED, None)


def session_revoked() -> SessionRevoked:
    return SessionRevoked()


async def _session_is_good(db: Database, principal: Principal, session_id: uuid.UUID) -> bool:
    async with db.session(principal.tenant_id, principal.subject) as session:
        row = (
            await session.execute(
                select(
                    UserSession.revoked_at,
                    User.role,
                    User.is_active & ~User.is_blocked & User.erased_at.is_(None),
                    UserRole.is_active,
                    UserRole.restaurant_ids,
                )
                .join(User, User.id == UserSession.user_id)
                .outerjoin(
                    UserRole,
                    (UserRole.user_id == UserSession.user_id)
                    & (UserRole.tenant_id == UserSession.tenant_id)
                    & (UserRole.role == UserSession.role),
                )
                .where(
                    UserSession.id == session_id,
                    UserSession.user_id == principal.subject,
                    UserSession.role == principal.role,
                    UserSession.tenant_id.is_not_distinct_from(principal.tenant_id),
                )
            )
        ).first()
    if row is None:
        return False
    revoked_at, user_role, user_may_sign_in, role_active, restaurant_ids = row
    if revoked_at is not None or not user_may_sign_in:
        return False
    if principal.role is Role.OWNER:
        return bool(user_role is Role.OWNER)
    return bool(role_active) and frozenset(restaurant_ids) == principal.restaurant_ids


async def ensure_session_good(db: Database, principal: Principal, session_id: uuid.UUID) -> None:
    key = f"session:{session_id}"
    good = facts.get(key)
    if good is None:
        stamp = facts.stamp()
        good = await _session_is_good(db, principal, session_id)
        facts.put(key, good, stamp)
    if not good:
        raise session_revoked()
