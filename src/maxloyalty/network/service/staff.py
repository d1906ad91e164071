"""Staff of a tenant: accounts, roles and restaurant scopes, blocks, timed permissions."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.identity.errors import RoleForbidden
from maxloyalty.identity.models import User, UserPermission, UserRole
from maxloyalty.identity.principal import RESTAURANT_SCOPED, STAFF_ROLES, Principal, Role
from maxloyalty.identity.service import api_keys
from maxloyalty.identity.service.contacts import (
    email_index,
    normalize_email,
    normalize_phone,
    phone_index,
)
from maxloyalty.identity.service.passwords import hash_password
from maxloyalty.identity.service.sessions import revoke_user_sessions
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import refuse_nulls
from maxloyalty.kit.pagination import PageParams, paginate
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
from maxloyalty.network.models import Restaurant
from maxloyalty.network.schemas import (
    ApiKeyCreate,
    PermissionCreate,
    StaffCreate,
    StaffOut,
    StaffUpdate,
)


def ensure_may_manage(actor: Principal, target: uuid.UUID | None, role: Role | None) -> None:
    """Someone admitted by a `write:staff` grant manages others below admin rank only."""
    if actor.role is Role.RESTAURANT_ADMIN:
        return
    if target == actor.subject:
        raise SelfManagement()
    if role is Role.RESTAURANT_ADMIN:
        raise RoleForbidden("Only an admin appoints admins.")


def staff_out(user: User, role: UserRole) -> StaffOut:
    return StaffOut(
        id=user.id,
        email=user.email,
        phone=user.phone,
        role=role.role,
        restaurant_ids=role.restaurant_ids,
        is_active=role.is_active,
        blocked_reason=role.blocked_reason,
        assigned_at=role.assigned_at,
        last_login_at=user.last_login_at,
    )


def _check_role(role: Role) -> None:
    if role not in STAFF_ROLES:
        raise InvalidStaffRole()


async def check_restaurants(session: AsyncSession, role: Role, ids: list[uuid.UUID]) -> None:
    if role in RESTAURANT_SCOPED and not ids:
        raise RestaurantsRequired(f"A {role.value} must be assigned at least one restaurant.")
    if ids:
        found = await session.scalar(
            select(func.count()).select_from(Restaurant).where(Restaurant.id.in_(set(ids)))
        )
        if found != len(set(ids)):
            raise UnknownRestaurant()


async def list_staff(
    session: AsyncSession, tenant_id: uuid.UUID, paging: PageParams
) -> list[StaffOut]:
    query = (
        select(User, UserRole)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role.in_(STAFF_ROLES), UserRole.tenant_id == tenant_id)
    )
    rows = await session.execute(paginate(query, User.id, paging))
    return [staff_out(user, role) for user, role in rows]


async def staff_member(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[User, UserRole]:
    row = (
        await session.execute(
            select(User, UserRole)
            .join(UserRole, UserRole.user_id == User.id)
            .where(
                UserRole.user_id == user_id,
                UserRole.role.in_(STAFF_ROLES),
                UserRole.tenant_id == tenant_id,
            )
        )
    ).first()
    if row is None:
        raise StaffNotFound()
    user, role = row
    return user, role


async def create_staff(
    session: AsyncSession, tenant_id: uuid.UUID, data: StaffCreate
) -> tuple[StaffOut, bool]:
    """Create the account (or reuse an existing person's) and give it a role here.
    Returns the staff entry and whether the account already existed; an existing
    account keeps its own password."""
    _check_role(data.role)
    if not data.email and not data.phone:
        raise ContactRequired()
    await check_restaurants(session, data.role, data.restaurant_ids)
    email = normalize_email(data.email) if data.email else None
    phone = normalize_phone(data.phone) if data.phone else None
    hashes = [h for h in (email and email_index(email), phone and phone_index(phone)) if h]
    user = await session.scalar(
        select(User).where((User.email_hash.in_(hashes)) | (User.phone_hash.in_(hashes)))
    )
    existed = user is not None
    if user is None:
        user = User(
            email=email,
            email_hash=email and email_index(email),
            phone=phone,
            phone_hash=phone and phone_index(phone),
            password_hash=hash_password(data.password),
            role=data.role,
        )
        session.add(user)
        await session.flush()
    elif await session.scalar(
        select(UserRole.id).where(
            UserRole.user_id == user.id,
            UserRole.role.in_(STAFF_ROLES),
            UserRole.tenant_id == tenant_id,
        )
    ):
        raise StaffExists()
    role = UserRole(
        tenant_id=tenant_id,
        user_id=user.id,
        role=data.role,
        restaurant_ids=sorted(set(data.restaurant_ids)),
    )
    session.add(role)
    await session.flush()
    out = staff_out(user, role)
    await record(
        session,
        "staff.created",
        "user",
        user.id,
        after={"role": role.role.value, "restaurant_ids": [str(r) for r in role.restaurant_ids]},
    )
    return out, existed


def _role_snapshot(role: UserRole) -> dict[str, object]:
    return {
        "role": role.role.value,
        "restaurant_ids": [str(r) for r in role.restaurant_ids],
        "is_active": role.is_active,
        "blocked_reason": role.blocked_reason,
    }


# Fields a PATCH of a staff member may not clear with null.
_STAFF_REQUIRED = frozenset({"role", "restaurant_ids", "is_active"})


async def update_staff(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, data: StaffUpdate
) -> StaffOut:
    refuse_nulls(data.model_dump(exclude_unset=True), _STAFF_REQUIRED)
    user, role = await staff_member(session, tenant_id, user_id)
    before = _role_snapshot(role)
    new_role = data.role or role.role
    _check_role(new_role)
    ids = data.restaurant_ids if data.restaurant_ids is not None else role.restaurant_ids
    await check_restaurants(session, new_role, ids)
    role.role, role.restaurant_ids = new_role, sorted(set(ids))
    if data.is_active is not None:
        role.is_active = data.is_active
        if data.is_active:
            role.blocked_reason = None
    after = _role_snapshot(role)
    if after != before:
        # Tokens carry role and scope: make the person sign in again under the new ones.
        await revoke_user_sessions(session, user.id, tenant_id)
        await record(session, "staff.updated", "user", user.id, before=before, after=after)
    return staff_out(user, role)


async def block_staff(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, reason: str
) -> StaffOut:
    user, role = await staff_member(session, tenant_id, user_id)
    before = _role_snapshot(role)
    role.is_active, role.blocked_reason = False, reason
    revoked = await revoke_user_sessions(session, user.id, tenant_id)
    await session.execute(
        update(UserPermission)
        .where(UserPermission.user_id == user.id, UserPermission.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await record(
        session,
        "staff.blocked",
        "user",
        user.id,
        before=before,
        after=_role_snapshot(role) | {"sessions_revoked": revoked},
    )
    return staff_out(user, role)


async def revoke_sessions(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    user, _ = await staff_member(session, tenant_id, user_id)
    revoked = await revoke_user_sessions(session, user.id, tenant_id)
    await record(session, "staff.sessions_revoked", "user", user.id, after={"count": revoked})
    return revoked


async def grant_permission(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    data: PermissionCreate,
    granted_by: uuid.UUID,
) -> UserPermission:
    await staff_member(session, tenant_id, user_id)
    if data.expires_at is not None and data.expires_at <= utcnow():
        raise ExpiryInPast()
    if data.resource_type == "restaurant":
        await check_restaurants(session, Role.RESTAURANT_ADMIN, data.resource_ids)
    grant = UserPermission(
        tenant_id=tenant_id,
        user_id=user_id,
        permission=data.permission,
        resource_type=data.resource_type,
        resource_ids=data.resource_ids,
        granted_by_user_id=granted_by,
        expires_at=data.expires_at,
    )
    session.add(grant)
    await session.flush()
    await record(
        session,
        "permission.granted",
        "user_permission",
        grant.id,
        after=data.model_dump(mode="json"),
    )
    return grant


async def issue_api_key(
    session: AsyncSession,
    hmac_key: bytes,
    tenant_id: uuid.UUID,
    data: ApiKeyCreate,
    created_by: uuid.UUID,
) -> api_keys.IssuedKey:
    """A key for a till or integration of this network's restaurants."""
    await check_restaurants(session, Role.SYSTEM, data.restaurant_ids)
    return await api_keys.create_key(
        session,
        hmac_key,
        tenant_id=tenant_id,
        name=data.name,
        restaurant_ids=data.restaurant_ids,
        require_signature=data.require_signature,
        created_by=created_by,
    )


async def list_permissions(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, paging: PageParams
) -> list[UserPermission]:
    await staff_member(session, tenant_id, user_id)
    query = select(UserPermission).where(UserPermission.user_id == user_id)
    return list(await session.scalars(paginate(query, UserPermission.id, paging)))


async def revoke_permission(
    session: AsyncSession, user_id: uuid.UUID, permission_id: uuid.UUID, revoked_by: uuid.UUID
) -> UserPermission:
    grant = await session.get(UserPermission, permission_id)
    if grant is None or grant.user_id != user_id:
        raise PermissionNotFound()
    if grant.revoked_at is None:
        grant.revoked_at, grant.revoked_by_user_id = utcnow(), revoked_by
        await record(session, "permission.revoked", "user_permission", grant.id)
    return grant
