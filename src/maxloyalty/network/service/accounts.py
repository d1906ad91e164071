"""Administration helpers behind `maxloyalty user ...` (a new installation's first owner)."""

from __future__ import annotations

import uuid

from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy import select

from maxloyalty.audit.service import record
from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.identity.service.contacts import (
    email_index,
    normalize_email,
    normalize_phone,
    phone_index,
)
from maxloyalty.identity.service.passwords import hash_password
from maxloyalty.network.errors import InvalidEmail, TenantNotFound, UserExists
from maxloyalty.network.models import Tenant
from maxloyalty.network.schemas import StaffCreate
from maxloyalty.network.service import staff
from maxloyalty.runtime import Runtime

_EMAIL = TypeAdapter(EmailStr)


async def create_owner(
    runtime: Runtime, *, email: str, password: str, phone: str | None
) -> uuid.UUID:
    try:
        email = normalize_email(_EMAIL.validate_python(email))
    except ValidationError as exc:
        raise InvalidEmail(f"{email!r} is not a usable email address.") from exc
    e164 = normalize_phone(phone) if phone else None
    async with runtime.db.transaction() as session:
        hashes = [email_index(email)] + ([phone_index(e164)] if e164 else [])
        taken = await session.scalar(
            select(User.id).where(User.email_hash.in_(hashes) | User.phone_hash.in_(hashes))
        )
        if taken is not None:
            raise UserExists()
        user = User(
            email=email,
            email_hash=email_index(email),
            phone=e164,
            phone_hash=phone_index(e164) if e164 else None,
            password_hash=hash_password(password),
            role=Role.OWNER,
            email_verified=True,
        )
        session.add(user)
        await session.flush()
        await record(session, "user.created", "user", user.id, after={"role": "OWNER"})
        return user.id


async def create_tenant_staff(
    runtime: Runtime,
    *,
    tenant_slug: str,
    email: str | None,
    phone: str | None,
    password: str,
    role: Role,
    restaurant_ids: list[uuid.UUID],
) -> uuid.UUID:
    async with runtime.db.platform_session() as platform:
        tenant_id = await platform.scalar(select(Tenant.id).where(Tenant.slug == tenant_slug))
    if tenant_id is None:
        raise TenantNotFound(f"No tenant with slug {tenant_slug!r}.")
    data = StaffCreate(
        email=email, phone=phone, password=password, role=role, restaurant_ids=restaurant_ids
    )
    async with runtime.db.transaction(tenant_id) as session:
        out, _ = await staff.create_staff(session, tenant_id, data)
        return out.id
