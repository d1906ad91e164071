"""A person's rights under 152-FZ: a copy of their data, and erasure.

Each network is its own data operator, so both work on the caller's network by default,
or on every network the person belongs to (`Scope.ALL`). `users` is global: erasure
anonymizes it (contacts, Telegram link and password go; the row stays, so ledger entries
that reference the person remain consistent) only when the person asks for everything, or
has no active membership left anywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.identity.models import (
    Consent,
    ConsentKind,
    OtpCode,
    User,
    UserRole,
    UserSession,
)
from maxloyalty.identity.service.sessions import revoke_user_sessions
from maxloyalty.integrations.pos import service as pos
from maxloyalty.integrations.telegram.service import chats as telegram_chats
from maxloyalty.kit import context
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import bind
from maxloyalty.kit.timestamps import rfc3339, rfc3339_or_none
from maxloyalty.network.models import Tenant
from maxloyalty.privacy.errors import UserNotFound
from maxloyalty.privacy.schemas import PersonalDataExport, Scope
from maxloyalty.privacy.service import guest_records


async def _user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None or user.erased_at is not None:
        raise UserNotFound()
    return user


async def _networks(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, scope: Scope
) -> list[uuid.UUID]:
    """The networks `scope` covers. The session is bound to the person (`app.user_id`), so
    it sees their roles in every network."""
    if scope is Scope.NETWORK:
        return [tenant_id]
    tenants = await session.scalars(
        select(UserRole.tenant_id).where(UserRole.user_id == user_id).distinct()
    )
    return sorted(set(tenants) | {tenant_id})


def _at(moment: datetime | None) -> str | None:
    return rfc3339_or_none(moment)


async def _identity(session: AsyncSession, tenant_id: uuid.UUID, user: User) -> dict[str, Any]:
    """Memberships, consents and sessions in the session's network."""
    roles = await session.scalars(
        select(UserRole)
        .where(UserRole.user_id == user.id, UserRole.tenant_id == tenant_id)
        .order_by(UserRole.assigned_at)
    )
    consents = await session.scalars(
        select(Consent).where(Consent.user_id == user.id).order_by(Consent.recorded_at)
    )
    sessions = await session.scalars(
        select(UserSession)
        .where(UserSession.user_id == user.id, UserSession.tenant_id == tenant_id)
        .order_by(UserSession.created_at)
    )
    return {
        "memberships": [
            {
                "tenant_id": str(r.tenant_id),
                "role": r.role.value,
                "restaurant_ids": [str(i) for i in r.restaurant_ids],
                "active": r.is_active,
                "since": rfc3339(r.assigned_at),
            }
            for r in roles
        ],
        "consents": [
            {
                "tenant_id": str(c.tenant_id),
                "kind": c.kind.value,
                "granted": c.granted,
                "at": rfc3339(c.recorded_at),
                "source": c.source,
                "ip": str(c.ip_address) if c.ip_address else None,
            }
            for c in consents
        ],
        "sessions": [
            {
                "tenant_id": str(s.tenant_id),
                "created_at": rfc3339(s.created_at),
                "last_activity_at": rfc3339(s.last_activity_at),
                "ip": str(s.ip_address) if s.ip_address else None,
                "user_agent": s.user_agent,
                "active": s.is_active,
            }
            for s in sessions
        ],
    }


async def _network_data(session: AsyncSession, tenant_id: uuid.UUID, user: User) -> dict[str, Any]:
    await bind(session, tenant_id=tenant_id)
    tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None  # the token's network, or one the person has a role in
    return (
        {"tenant_id": str(tenant_id), "name": tenant.name}
        | await _identity(session, tenant_id, user)
        | await guest_records.export(session, user.id)
        | {"pos_orders": await pos.personal_orders(session, user.id, user.phone_hash)}
        | {
            "telegram_chats": await telegram_chats.personal_chats(
                session, user.id, user.telegram_id
            )
        }
    )


async def export(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, scope: Scope
) -> PersonalDataExport:
    """Everything stored about the person, per network in `networks`. `memberships`,
    `consents` and `sessions` repeat those networks' entries, for clients that read them
    before `networks` existed."""
    user = await _user(session, user_id)
    networks = []
    for network in await _networks(session, tenant_id, user_id, scope):
        networks.append(await _network_data(session, network, user))
        await record(session, "user.data_exported", "user", user_id, after={"scope": scope.value})
    await bind(session, tenant_id=tenant_id)
    return PersonalDataExport.model_validate(
        {
            "user": {
                "id": str(user.id),
                "phone": user.phone,
                "email": user.email,
                "telegram_id": user.telegram_id,
                "created_at": rfc3339(user.created_at),
                "last_login_at": _at(user.last_login_at),
            },
            "memberships": [m for n in networks for m in n["memberships"]],
            "consents": [c for n in networks for c in n["consents"]],
            "sessions": [s for n in networks for s in n["sessions"]],
            "networks": networks,
        }
    )


@contextmanager
def _without_client() -> Iterator[None]:
    """The activity log of an erasure keeps who asked (their id), not where from."""
    token = context.client.set(context.Client())
    try:
        yield
    finally:
        context.client.reset(token)


async def _erase_in(session: AsyncSession, tenant_id: uuid.UUID, user: User, scope: Scope) -> None:
    """The person's data in one network: profile, children, cards, POS records, their chat
    with the network's bot, consents' addresses, roles, sessions and one-time codes. The
    ledger keeps every row."""
    await bind(session, tenant_id=tenant_id)
    await guest_records.erase(session, user.id)
    await pos.forget_person(session, user.id, user.phone_hash)
    await telegram_chats.forget_person(session, user.id, user.telegram_id)
    # Consents stay as proof of each decision, without the address it came from.
    await session.execute(
        update(Consent)
        .where(Consent.user_id == user.id, Consent.ip_address.is_not(None))
        .values(ip_address=None)
    )
    session.add(
        Consent(
            tenant_id=tenant_id,
            user_id=user.id,
            kind=ConsentKind.PERSONAL_DATA,
            granted=False,
            source="ERASURE_REQUEST",
        )
    )
    await session.execute(
        update(UserRole)
        .where(UserRole.user_id == user.id, UserRole.tenant_id == tenant_id)
        .values(is_active=False)
    )
    await revoke_user_sessions(session, user.id, tenant_id)
    if user.phone_hash:
        await session.execute(delete(OtpCode).where(OtpCode.phone_hash == user.phone_hash))
    await record(session, "user.erased", "user", user.id, after={"scope": scope.value})


async def _active_anywhere(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return bool(
        await session.scalar(
            select(exists().where(UserRole.user_id == user_id, UserRole.is_active.is_(True)))
        )
    )


async def _anonymize(session: AsyncSession, user: User) -> None:
    user.phone = user.phone_hash = user.email = user.email_hash = None
    user.telegram_id = None
    user.password_hash = None
    user.is_active = False
    user.erased_at = utcnow()
    await revoke_user_sessions(session, user.id, None)


async def erase(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, scope: Scope
) -> None:
    """Erase the person in `scope`'s networks, in the session's transaction; anonymize
    `users` too when nothing active is left (or everything was asked for)."""
    user = await _user(session, user_id)
    with _without_client():
        for network in await _networks(session, tenant_id, user_id, scope):
            await _erase_in(session, network, user, scope)
        await bind(session, tenant_id=tenant_id)
        if scope is Scope.ALL or not await _active_anywhere(session, user_id):
            await _anonymize(session, user)
