"""The demo network: what `maxloyalty demo` and the first `make run` load.

So far the platform knows tenants, restaurants and points of sale, so that is what the
demo holds; staff, guests and their history join it as those modules land.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from maxloyalty.config import Settings
from maxloyalty.network import service
from maxloyalty.network.models import Tenant
from maxloyalty.network.schemas import PointOfSaleCreate, RestaurantCreate, TenantCreate
from maxloyalty.runtime import Runtime

# (tenant, [(restaurant, [points of sale])])
NETWORK: list[tuple[TenantCreate, list[tuple[RestaurantCreate, list[str]]]]] = [
    (
        TenantCreate(name="Гриль Хаус", slug="grill-house", timezone="Europe/Moscow"),
        [
            (
                RestaurantCreate(
                    name="Гриль Хаус — Тверская",
                    timezone="Europe/Moscow",
                    city="Москва",
                    address="ул. Тверская, 12",
                ),
                ["Касса 1", "Касса 2", "Бар"],
            ),
            (
                RestaurantCreate(
                    name="Гриль Хаус — Невский",
                    timezone="Europe/Moscow",
                    city="Санкт-Петербург",
                    address="Невский пр., 48",
                ),
                ["Касса 1", "Касса 2"],
            ),
            (
                RestaurantCreate(
                    name="Гриль Хаус — Екатеринбург",
                    timezone="Asia/Yekaterinburg",
                    city="Екатеринбург",
                    address="ул. Вайнера, 9",
                ),
                ["Касса 1"],
            ),
        ],
    ),
    (
        TenantCreate(name="Кофейня Зерно", slug="zerno-coffee", timezone="Asia/Novosibirsk"),
        [
            (
                RestaurantCreate(
                    name="Зерно на Красном",
                    timezone="Asia/Novosibirsk",
                    city="Новосибирск",
                    address="Красный пр., 25",
                ),
                ["Касса"],
            ),
        ],
    ),
]


@dataclass
class DemoSummary:
    created: bool
    message: str
    data: dict[str, Any] = field(default_factory=dict)


async def _load(runtime: Runtime) -> DemoSummary:
    slugs = [tenant.slug for tenant, _ in NETWORK]
    async with runtime.db.platform_session() as platform:
        existing = list(await platform.scalars(select(Tenant).where(Tenant.slug.in_(slugs))))
    if existing:
        return DemoSummary(False, "The demo network is already loaded; nothing to do.")

    tenants_out: list[dict[str, Any]] = []
    points = 0
    for tenant_data, restaurants in NETWORK:
        async with runtime.db.platform_session() as platform:
            tenant = await service.create_tenant(platform, tenant_data)
            await platform.commit()
        restaurants_out = []
        async with runtime.db.transaction(tenant.id) as session:
            for restaurant_data, pos_names in restaurants:
                restaurant = await service.create_restaurant(session, tenant.id, restaurant_data)
                restaurants_out.append({"id": str(restaurant.id), "name": restaurant.name})
                for name in pos_names:
                    await service.create_point_of_sale(
                        session, restaurant, PointOfSaleCreate(name=name)
                    )
                    points += 1
        tenants_out.append(
            {"id": str(tenant.id), "name": tenant.name, "restaurants": restaurants_out}
        )
    restaurant_count = sum(len(t["restaurants"]) for t in tenants_out)
    return DemoSummary(
        True,
        f"Demo network loaded: {len(tenants_out)} tenants, {restaurant_count} restaurants, "
        f"{points} points of sale.",
        {"tenants": tenants_out},
    )


def load_demo(settings: Settings) -> DemoSummary:
    async def main() -> DemoSummary:
        runtime = Runtime.start(settings)
        try:
            return await _load(runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())
