"""A person's rights under 152-FZ: a copy of their data, and erasure.

Erasure anonymizes: contacts, Telegram link and password go, the row stays, so ledger
entries that reference the person remain consistent.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.identity.models import Consent, ConsentKind, User, UserRole, UserSession
from maxloyalty.identity.sessions import revoke_user_sessions
from maxloyalty.kit import context
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import NotFound


async def _user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None or user.erased_at is not None:
        raise NotFound("No such person.", code="user_not_found")
    return user


async def export(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    user = await _user(session, user_id)
    roles = await session.scalars(select(UserRole).where(UserRole.user_id == user_id))
    consents = await session.scalars(
        select(Consent).where(Consent.user_id == user_id).order_by(Consent.recorded_at)
    )
    sessions = await session.scalars(
        select(UserSession).where(UserSession.user_id == user_id).order_by(UserSession.created_at)
    )
    await record(session, "user.data_exported", "user", user_id)
    return {
        "user": {
            "id": str(user.id),
            "phone": user.phone,
            "email": user.email,
            "telegram_id": user.telegram_id,
            "created_at": user.created_at.isoformat(),
            "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
        },
        "memberships": [
            {
                "tenant_id": str(r.tenant_id),
                "role": r.role.value,
                "since": r.assigned_at.isoformat(),
            }
            for r in roles
        ],
        "consents": [
            {"kind": c.kind.value, "granted": c.granted, "at": c.recorded_at.isoformat()}
            for c in consents
        ],
        "sessions": [
            {
                "created_at": s.created_at.isoformat(),
                "ip": str(s.ip_address) if s.ip_address else None,
                "user_agent": s.user_agent,
                "active": s.is_active,
            }
            for s in sessions
        ],
    }


async def erase(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    user = await _user(session, user_id)
    user.phone = user.phone_hash = user.email = user.email_hash = None
    user.telegram_id = None
    user.password_hash = None
    user.is_active = False
    user.erased_at = utcnow()
    await revoke_user_sessions(session, user_id, None)
    session.add(
        Consent(
            tenant_id=tenant_id,
            user_id=user_id,
            kind=ConsentKind.PERSONAL_DATA,
            granted=False,
            ip_address=context.client.get().ip,
            source="ERASURE_REQUEST",
        )
    )
    await record(session, "user.erased", "user", user_id)
