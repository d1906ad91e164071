"""Rules for tenants, restaurants and points of sale. Callers commit."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record, snapshot
from maxloyalty.identity.principal import Principal
from maxloyalty.kit.db import for_update, violated_constraint
from maxloyalty.kit.errors import Conflict, refuse_nulls
from maxloyalty.kit.events import publish
from maxloyalty.kit.pagination import PageParams, paginate
from maxloyalty.kit.refdata import remembered
from maxloyalty.network.errors import (
    PosNameTaken,
    RestaurantForbidden,
    RestaurantLimitReached,
    RestaurantNameTaken,
    RestaurantNotFound,
    TenantNotFound,
    TenantSlugTaken,
)
from maxloyalty.network.models import PointOfSale, Restaurant, Tenant
from maxloyalty.network.schemas import (
    PointOfSaleCreate,
    RestaurantCreate,
    RestaurantUpdate,
    TenantCreate,
)


async def _flush_unique(session: AsyncSession, messages: dict[str, Conflict]) -> None:
    """Flush, turning a known unique violation into its 409 answer."""
    try:
        await session.flush()
    except IntegrityError as exc:
        conflict = messages.get(violated_constraint(exc) or "")
        if conflict is None:
            raise
        raise conflict from exc


# --- tenants (platform path) -------------------------------------------------------------


async def create_tenant(platform: AsyncSession, data: TenantCreate) -> Tenant:
    tenant = Tenant(**data.model_dump())
    platform.add(tenant)
    await _flush_unique(
        platform,
        {"uq_tenants_slug": TenantSlugTaken(f"A tenant with slug {data.slug!r} exists.")},
    )
    await record(
        platform, "tenant.created", "tenant", tenant.id, after=snapshot(tenant), tenant_id=tenant.id
    )
    return tenant


async def list_tenants(platform: AsyncSession, params: PageParams) -> list[Tenant]:
    return list(await platform.scalars(paginate(select(Tenant), Tenant.id, params)))


# Fields a PATCH may not clear with null.
_RESTAURANT_REQUIRED = frozenset({"name", "timezone", "status"})

# --- restaurants -------------------------------------------------------------------------


async def list_restaurants(
    session: AsyncSession, principal: Principal, params: PageParams
) -> list[Restaurant]:
    query = select(Restaurant)
    if principal.restaurant_scope is not None:
        query = query.where(Restaurant.id.in_(principal.restaurant_scope))
    return list(await session.scalars(paginate(query, Restaurant.id, params)))


async def restaurant_row(session: AsyncSession, restaurant_id: uuid.UUID) -> Restaurant | None:
    """The tenant's restaurant as every till call reads it (kept per process: refdata)."""
    return await remembered(
        session, ("restaurant", restaurant_id), lambda: session.get(Restaurant, restaurant_id)
    )


async def tenant_row(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    """The session's tenant as every till call reads it (kept per process: refdata)."""
    return await remembered(session, ("tenant", tenant_id), lambda: session.get(Tenant, tenant_id))


async def get_restaurant(
    session: AsyncSession, principal: Principal, restaurant_id: uuid.UUID
) -> Restaurant:
    restaurant = await session.get(Restaurant, restaurant_id)
    if restaurant is None:  # another tenant's rows are invisible: the same 404
        raise RestaurantNotFound()
    if not principal.can_see_restaurant(restaurant_id):
        raise RestaurantForbidden()
    return restaurant


def _name_taken(name: str) -> dict[str, Conflict]:
    return {
        "uq_restaurants_tenant_id_name": RestaurantNameTaken(f"A restaurant named {name!r} exists.")
    }


async def create_restaurant(
    session: AsyncSession, tenant_id: uuid.UUID, data: RestaurantCreate
) -> Restaurant:
    # The tenant row lock serializes creations, so the plan limit holds under concurrency.
    tenant = await session.scalar(for_update(select(Tenant).where(Tenant.id == tenant_id)))
    if tenant is None:
        raise TenantNotFound("No such tenant.")
    if tenant.max_restaurants is not None:
        count = await session.scalar(select(func.count()).select_from(Restaurant))
        if (count or 0) >= tenant.max_restaurants:
            raise RestaurantLimitReached(f"The plan allows {tenant.max_restaurants} restaurants.")
    restaurant = Restaurant(tenant_id=tenant_id, **data.model_dump())
    session.add(restaurant)
    await _flush_unique(session, _name_taken(data.name))
    after = snapshot(restaurant)
    await record(session, "restaurant.created", "restaurant", restaurant.id, after=after)
    await publish(session, tenant_id, "restaurant.created", after)
    return restaurant


async def update_restaurant(
    session: AsyncSession, principal: Principal, restaurant_id: uuid.UUID, data: RestaurantUpdate
) -> Restaurant:
    restaurant = await get_restaurant(session, principal, restaurant_id)
    before = snapshot(restaurant)
    changes = data.model_dump(exclude_unset=True)
    refuse_nulls(changes, _RESTAURANT_REQUIRED)
    for field, value in changes.items():
        setattr(restaurant, field, value)
    await _flush_unique(session, _name_taken(restaurant.name))
    await session.refresh(restaurant)
    after = snapshot(restaurant)
    if after != before:
        await record(
            session, "restaurant.updated", "restaurant", restaurant.id, before=before, after=after
        )
        await publish(session, restaurant.tenant_id, "restaurant.updated", after)
    return restaurant


# --- points of sale ----------------------------------------------------------------------


async def list_points_of_sale(
    session: AsyncSession, principal: Principal, restaurant_id: uuid.UUID, params: PageParams
) -> list[PointOfSale]:
    await get_restaurant(session, principal, restaurant_id)
    query = select(PointOfSale).where(PointOfSale.restaurant_id == restaurant_id)
    return list(await session.scalars(paginate(query, PointOfSale.id, params)))


async def add_point_of_sale(
    session: AsyncSession, principal: Principal, restaurant_id: uuid.UUID, data: PointOfSaleCreate
) -> PointOfSale:
    """A new point of sale in a restaurant the caller may see."""
    restaurant = await get_restaurant(session, principal, restaurant_id)
    return await create_point_of_sale(session, restaurant, data)


async def create_point_of_sale(
    session: AsyncSession, restaurant: Restaurant, data: PointOfSaleCreate
) -> PointOfSale:
    pos = PointOfSale(
        tenant_id=restaurant.tenant_id, restaurant_id=restaurant.id, **data.model_dump()
    )
    session.add(pos)
    await _flush_unique(
        session,
        {
            "uq_points_of_sale_restaurant_id_name": PosNameTaken(
                f"A point of sale named {data.name!r} exists here."
            )
        },
    )
    await record(session, "point_of_sale.created", "point_of_sale", pos.id, after=snapshot(pos))
    return pos
