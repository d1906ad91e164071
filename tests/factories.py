"""Builders of test data through the real services."""

from __future__ import annotations

import uuid

from maxloyalty.network import service
from maxloyalty.network.models import Restaurant, Tenant
from maxloyalty.network.schemas import RestaurantCreate, TenantCreate
from maxloyalty.runtime import Runtime


async def make_tenant(runtime: Runtime, **fields: object) -> Tenant:
    data = TenantCreate.model_validate(
        {"name": "Сеть", "slug": f"t-{uuid.uuid4().hex[:10]}", "timezone": "Europe/Moscow"} | fields
    )
    async with runtime.db.platform_session() as platform:
        tenant = await service.create_tenant(platform, data)
        await platform.commit()
        return tenant


async def make_restaurant(runtime: Runtime, tenant: Tenant, name: str | None = None) -> Restaurant:
    data = RestaurantCreate(
        name=name or f"Ресторан {uuid.uuid4().hex[:6]}", timezone="Asia/Yekaterinburg"
    )
    async with runtime.db.transaction(tenant.id) as session:
        return await service.create_restaurant(session, tenant.id, data)
