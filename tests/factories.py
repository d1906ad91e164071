"""Builders of test data through the real services."""

from __future__ import annotations

import uuid

import httpx

from maxloyalty.guests.models import GuestCard, RegistrationSource
from maxloyalty.guests.service.cards import find_or_create_user_by_phone, join_network
from maxloyalty.identity.principal import Role
from maxloyalty.loyalty.models import CardMode, LoyaltySystem, ProgramType
from maxloyalty.loyalty.service import create_program
from maxloyalty.network.models import Restaurant, Tenant
from maxloyalty.network.schemas import RestaurantCreate, StaffCreate, TenantCreate
from maxloyalty.network.service import restaurants as service
from maxloyalty.network.service import staff
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


PASSWORD = "correct horse battery staple"


async def make_staff(
    runtime: Runtime,
    tenant: Tenant,
    role: Role,
    restaurants: tuple[Restaurant, ...] = (),
    email: str | None = None,
) -> str:
    """A staff member with `PASSWORD`; returns the login email."""
    email = email or f"{role.value.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    data = StaffCreate(
        email=email,
        password=PASSWORD,
        role=role,
        restaurant_ids=[r.id for r in restaurants],
    )
    async with runtime.db.transaction(tenant.id) as session:
        await staff.create_staff(session, tenant.id, data)
    return email


async def login(
    client: httpx.AsyncClient,
    email: str,
    password: str = PASSWORD,
    tenant_id: uuid.UUID | None = None,
) -> dict[str, str]:
    body: dict[str, str] = {"login": email, "password": password}
    if tenant_id:
        body["tenant_id"] = str(tenant_id)
    response = await client.post("/api/auth/login", json=body)
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def make_program(
    runtime: Runtime, tenant: Tenant, program_type: str = "POINTS", **settings: object
) -> LoyaltySystem:
    async with runtime.db.transaction(tenant.id) as session:
        return await create_program(
            session,
            tenant.id,
            type=ProgramType(program_type),
            mode=CardMode(str(settings.pop("mode", "UNIFIED"))),
            **settings,
        )


async def make_guest(
    runtime: Runtime,
    system: LoyaltySystem,
    phone: str | None = None,
    restaurant_id: uuid.UUID | None = None,
) -> GuestCard:
    phone = phone or f"+7925{uuid.uuid4().int % 10_000_000:07d}"
    async with runtime.db.transaction(system.tenant_id) as session:
        user = await find_or_create_user_by_phone(session, phone)
        return await join_network(session, system, user, RegistrationSource.POS, restaurant_id)
