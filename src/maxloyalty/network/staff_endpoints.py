"""Staff, their permissions and API keys: managed by the tenant admin."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status

from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, StaffAdmin, TenantAdmin
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.identity.errors import ApiKeyNotFound, RoleForbidden
from maxloyalty.identity.principal import Principal
from maxloyalty.identity.service import api_keys
from maxloyalty.kit.errors import InvalidCursor, RequiredField, problem_responses
from maxloyalty.kit.pagination import Page, Paging, make_page
from maxloyalty.network.errors import (
    ContactRequired,
    ExpiryInPast,
    InvalidStaffRole,
    PermissionNotFound,
    RestaurantsRequired,
    SelfManagement,
    StaffExists,
    StaffNotFound,
    UnknownRestaurant,
)
from maxloyalty.network.schemas import (
    ApiKeyCreate,
    ApiKeyIssued,
    ApiKeyOut,
    BlockRequest,
    PermissionCreate,
    PermissionOut,
    StaffCreate,
    StaffOut,
    StaffUpdate,
)
from maxloyalty.network.service import staff
from maxloyalty.runtime import runtime_of

router = APIRouter(tags=["staff"], responses=problem_responses(*SIGNED_IN_REFUSALS))


def _tenant(principal: Principal) -> uuid.UUID:
    assert principal.tenant_id is not None  # Authorize admits no tenant-less staff
    return principal.tenant_id


@router.get("/api/staff", responses=problem_responses(InvalidCursor))
async def list_staff(_admin: StaffAdmin, session: TenantSession, paging: Paging) -> Page[StaffOut]:
    rows, cursor = make_page(await staff.list_staff(session, _tenant(_admin), paging), paging)
    return Page(items=rows, next_cursor=cursor)


_ROLE_CHECKS = (InvalidStaffRole, RestaurantsRequired, UnknownRestaurant)


@router.post(
    "/api/staff",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        RoleForbidden, SelfManagement, ContactRequired, StaffExists, *_ROLE_CHECKS
    ),
)
async def create_staff(body: StaffCreate, admin: StaffAdmin, session: TenantSession) -> StaffOut:
    """Create a staff account with an initial password (an existing person keeps theirs)."""
    staff.ensure_may_manage(admin, None, body.role)
    out, _ = await staff.create_staff(session, _tenant(admin), body)
    # Only what the admin typed comes back: nothing about an account that existed before.
    return out.model_copy(update={"email": body.email, "phone": body.phone})


@router.patch(
    "/api/staff/{user_id}",
    responses=problem_responses(
        RequiredField, RoleForbidden, SelfManagement, StaffNotFound, *_ROLE_CHECKS
    ),
)
async def update_staff(
    user_id: uuid.UUID, body: StaffUpdate, admin: StaffAdmin, session: TenantSession
) -> StaffOut:
    staff.ensure_may_manage(admin, user_id, body.role)
    return await staff.update_staff(session, _tenant(admin), user_id, body)


@router.post(
    "/api/staff/{user_id}/block", responses=problem_responses(SelfManagement, StaffNotFound)
)
async def block_staff(
    user_id: uuid.UUID, body: BlockRequest, admin: StaffAdmin, session: TenantSession
) -> StaffOut:
    """Block the person in this network and end their sessions here."""
    staff.ensure_may_manage(admin, user_id, None)
    return await staff.block_staff(session, _tenant(admin), user_id, body.reason)


@router.post(
    "/api/staff/{user_id}/sessions/revoke",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(StaffNotFound),
)
async def revoke_sessions(
    user_id: uuid.UUID, admin: StaffAdmin, session: TenantSession
) -> Response:
    await staff.revoke_sessions(session, _tenant(admin), user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/api/staff/{user_id}/permissions",
    responses=problem_responses(InvalidCursor, StaffNotFound),
)
async def list_permissions(
    user_id: uuid.UUID, _admin: StaffAdmin, session: TenantSession, paging: Paging
) -> Page[PermissionOut]:
    found = await staff.list_permissions(session, _tenant(_admin), user_id, paging)
    rows, cursor = make_page(found, paging)
    return Page(items=[PermissionOut.model_validate(p) for p in rows], next_cursor=cursor)


@router.post(
    "/api/staff/{user_id}/permissions",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(StaffNotFound, ExpiryInPast, UnknownRestaurant),
)
async def grant_permission(
    user_id: uuid.UUID, body: PermissionCreate, admin: TenantAdmin, session: TenantSession
) -> PermissionOut:
    grant = await staff.grant_permission(session, _tenant(admin), user_id, body, admin.subject)
    return PermissionOut.model_validate(grant)


@router.delete(
    "/api/staff/{user_id}/permissions/{permission_id}",
    responses=problem_responses(PermissionNotFound),
)
async def revoke_permission(
    user_id: uuid.UUID, permission_id: uuid.UUID, admin: TenantAdmin, session: TenantSession
) -> PermissionOut:
    grant = await staff.revoke_permission(session, user_id, permission_id, admin.subject)
    return PermissionOut.model_validate(grant)


@router.get("/api/api-keys", tags=["api keys"], responses=problem_responses(InvalidCursor))
async def list_api_keys(
    _admin: TenantAdmin, session: TenantSession, paging: Paging
) -> Page[ApiKeyOut]:
    rows, cursor = make_page(await api_keys.list_keys(session, paging), paging)
    return Page(items=[ApiKeyOut.model_validate(k) for k in rows], next_cursor=cursor)


@router.post(
    "/api/api-keys",
    tags=["api keys"],
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(UnknownRestaurant),
)
async def create_api_key(
    body: ApiKeyCreate, admin: TenantAdmin, session: TenantSession, request: Request
) -> ApiKeyIssued:
    """Issue a key for a till or integration; the key (and signing secret) show only here."""
    key = runtime_of(request).api_key_key
    issued = await staff.issue_api_key(session, key, _tenant(admin), body, admin.subject)
    return ApiKeyIssued(
        **ApiKeyOut.model_validate(issued.api_key).model_dump(),
        key=issued.key,
        signing_secret=issued.signing_secret,
    )


@router.delete(
    "/api/api-keys/{key_id}", tags=["api keys"], responses=problem_responses(ApiKeyNotFound)
)
async def revoke_api_key(
    key_id: uuid.UUID, _admin: TenantAdmin, session: TenantSession
) -> ApiKeyOut:
    row = await api_keys.revoke_key(session, key_id)
    return ApiKeyOut.model_validate(row)
