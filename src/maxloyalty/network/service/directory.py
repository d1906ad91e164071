"""Finding a network by its public slug before anyone is signed in, and a guest's networks
(the guest pages)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.kit.db import bind
from maxloyalty.network.errors import TenantNotFound
from maxloyalty.network.models import Tenant

_LOOKUP = text("SELECT id, name, slug, timezone FROM public_tenant(:slug)")
_PERSONS = text("SELECT id, name, slug, timezone FROM person_networks()")


@dataclass(frozen=True)
class PublicTenant:
    id: uuid.UUID
    name: str
    slug: str
    timezone: str


async def tenant_by_slug(session: AsyncSession, slug: str) -> PublicTenant:
    """The network named by `slug`, with the session bound to it from here on."""
    row = (await session.execute(_LOOKUP, {"slug": slug[:63]})).first()
    if row is None:
        raise TenantNotFound()
    tenant = PublicTenant(id=row.id, name=row.name, slug=row.slug, timezone=row.timezone)
    await bind(session, tenant_id=tenant.id)
    return tenant


async def networks_of_person(session: AsyncSession) -> list[PublicTenant]:
    """Every network where the person `session` is bound to is an active guest."""
    rows = await session.execute(_PERSONS)
    return [PublicTenant(id=r.id, name=r.name, slug=r.slug, timezone=r.timezone) for r in rows]


async def tenant_of(session: AsyncSession, tenant_id: uuid.UUID) -> PublicTenant:
    """The public facts of the network the session is bound to (its own row is all the
    app role sees of `tenants`)."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise TenantNotFound()
    return PublicTenant(id=tenant.id, name=tenant.name, slug=tenant.slug, timezone=tenant.timezone)
