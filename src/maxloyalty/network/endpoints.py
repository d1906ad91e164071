"""Restaurants and points of sale for a tenant's staff; tenants for the platform owner."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, Staff, TenantAdmin
from maxloyalty.identity.dependencies import PlatformSession, TenantSession
from maxloyalty.kit.errors import InvalidCursor, MalformedJson, RequiredField, problem_responses
from maxloyalty.kit.pagination import Page, Paging, make_page
from maxloyalty.network.errors import (
    PosNameTaken,
    RestaurantForbidden,
    RestaurantLimitReached,
    RestaurantNameTaken,
    RestaurantNotFound,
    TenantNotFound,
    TenantSlugTaken,
)
from maxloyalty.network.schemas import (
    PointOfSaleCreate,
    PointOfSaleOut,
    RestaurantCreate,
    RestaurantOut,
    RestaurantUpdate,
    TenantCreate,
    TenantOut,
)
from maxloyalty.network.service import restaurants as service

router = APIRouter(tags=["restaurants"], responses=problem_responses(*SIGNED_IN_REFUSALS))
platform_router = APIRouter(tags=["platform"], responses=problem_responses(*SIGNED_IN_REFUSALS))


@router.get(
    "/api/restaurants",
    response_model=Page[RestaurantOut],
    responses=problem_responses(InvalidCursor),
)
async def list_restaurants(
    principal: Staff, session: TenantSession, paging: Paging
) -> Page[RestaurantOut]:
    rows, cursor = make_page(await service.list_restaurants(session, principal, paging), paging)
    return Page(items=[RestaurantOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/api/restaurants",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        MalformedJson, TenantNotFound, RestaurantLimitReached, RestaurantNameTaken
    ),
)
async def create_restaurant(
    body: RestaurantCreate, principal: TenantAdmin, session: TenantSession
) -> RestaurantOut:
    assert principal.tenant_id is not None
    restaurant = await service.create_restaurant(session, principal.tenant_id, body)
    return RestaurantOut.model_validate(restaurant)


@router.get(
    "/api/restaurants/{restaurant_id}",
    responses=problem_responses(RestaurantNotFound, RestaurantForbidden),
)
async def get_restaurant(
    restaurant_id: uuid.UUID, principal: Staff, session: TenantSession
) -> RestaurantOut:
    return RestaurantOut.model_validate(
        await service.get_restaurant(session, principal, restaurant_id)
    )


@router.patch(
    "/api/restaurants/{restaurant_id}",
    responses=problem_responses(
        MalformedJson, RequiredField, RestaurantNotFound, RestaurantForbidden, RestaurantNameTaken
    ),
)
async def update_restaurant(
    restaurant_id: uuid.UUID, body: RestaurantUpdate, principal: TenantAdmin, session: TenantSession
) -> RestaurantOut:
    restaurant = await service.update_restaurant(session, principal, restaurant_id, body)
    return RestaurantOut.model_validate(restaurant)


@router.get(
    "/api/restaurants/{restaurant_id}/points-of-sale",
    response_model=Page[PointOfSaleOut],
    responses=problem_responses(InvalidCursor, RestaurantNotFound, RestaurantForbidden),
)
async def list_points_of_sale(
    restaurant_id: uuid.UUID, principal: Staff, session: TenantSession, paging: Paging
) -> Page[PointOfSaleOut]:
    found = await service.list_points_of_sale(session, principal, restaurant_id, paging)
    rows, cursor = make_page(found, paging)
    return Page(items=[PointOfSaleOut.model_validate(p) for p in rows], next_cursor=cursor)


@router.post(
    "/api/restaurants/{restaurant_id}/points-of-sale",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        MalformedJson, RestaurantNotFound, RestaurantForbidden, PosNameTaken
    ),
)
async def create_point_of_sale(
    restaurant_id: uuid.UUID,
    body: PointOfSaleCreate,
    principal: TenantAdmin,
    session: TenantSession,
) -> PointOfSaleOut:
    pos = await service.add_point_of_sale(session, principal, restaurant_id, body)
    return PointOfSaleOut.model_validate(pos)


@platform_router.post(
    "/api/platform/tenants",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(MalformedJson, TenantSlugTaken),
)
async def create_tenant(body: TenantCreate, platform: PlatformSession) -> TenantOut:
    tenant = await service.create_tenant(platform, body)
    return TenantOut.model_validate(tenant)


@platform_router.get(
    "/api/platform/tenants",
    response_model=Page[TenantOut],
    responses=problem_responses(InvalidCursor),
)
async def list_tenants(platform: PlatformSession, paging: Paging) -> Page[TenantOut]:
    rows, cursor = make_page(await service.list_tenants(platform, paging), paging)
    return Page(items=[TenantOut.model_validate(t) for t in rows], next_cursor=cursor)
