from __future__ import annotations

import uuid
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)

from maxloyalty.identity.principal import Role
from maxloyalty.identity.schemas import Password, Phone
from maxloyalty.kit.schemas import Strict
from maxloyalty.kit.timestamps import Timestamp
from maxloyalty.network.models import PointOfSaleStatus, RestaurantStatus, SubscriptionStatus


def _iana_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be an IANA time zone such as Europe/Moscow") from exc
    return value


TimeZone = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_iana_zone)
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantCreate(Strict):
    name: Name
    slug: Slug
    timezone: TimeZone = "Europe/Moscow"
    organization_type: str = Field(default="chain", max_length=32)
    max_restaurants: int | None = Field(default=None, ge=1, le=10**6)
    max_guests: int | None = Field(default=None, ge=1, le=10**9)


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    timezone: str
    organization_type: str
    subscription_status: SubscriptionStatus
    max_restaurants: int | None
    max_guests: int | None
    logo_url: str | None
    primary_color: str | None
    secondary_color: str | None
    created_at: Timestamp


class RestaurantCreate(Strict):
    name: Name
    timezone: TimeZone
    address: str | None = Field(default=None, max_length=500)
    city: str | None = Field(default=None, max_length=120)
    phone: str | None = Field(default=None, max_length=32)


class RestaurantUpdate(Strict):
    name: Name | None = None
    timezone: TimeZone | None = None
    address: str | None = Field(default=None, max_length=500)
    city: str | None = Field(default=None, max_length=120)
    phone: str | None = Field(default=None, max_length=32)
    status: RestaurantStatus | None = None


class RestaurantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    timezone: str
    address: str | None
    city: str | None
    phone: str | None
    status: RestaurantStatus
    created_at: Timestamp
    updated_at: Timestamp


class PointOfSaleCreate(Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    external_id: str | None = Field(default=None, max_length=120)


class PointOfSaleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    restaurant_id: uuid.UUID
    name: str
    external_id: str | None
    status: PointOfSaleStatus
    created_at: Timestamp


StaffRole = Annotated[Role, Field(description="RESTAURANT_ADMIN, MANAGER or CASHIER")]


class StaffCreate(Strict):
    email: EmailStr | None = None
    phone: Phone | None = None
    password: Password
    role: StaffRole
    restaurant_ids: list[uuid.UUID] = []


class StaffUpdate(Strict):
    role: StaffRole | None = None
    restaurant_ids: list[uuid.UUID] | None = None
    is_active: bool | None = None


class BlockRequest(Strict):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class StaffOut(BaseModel):
    id: uuid.UUID
    email: str | None
    phone: str | None
    role: Role
    restaurant_ids: list[uuid.UUID]
    is_active: bool
    blocked_reason: str | None
    assigned_at: Timestamp
    last_login_at: Timestamp | None


class PermissionCreate(Strict):
    permission: Annotated[str, StringConstraints(pattern=r"^(read|write):[a-z_]{2,40}$")]
    resource_type: Annotated[str, StringConstraints(pattern=r"^[a-z_]{2,32}$")] | None = None
    resource_ids: list[uuid.UUID] = []
    expires_at: AwareDatetime | None = None


class PermissionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    permission: str
    resource_type: str | None
    resource_ids: list[uuid.UUID]
    granted_at: Timestamp
    granted_by_user_id: uuid.UUID | None
    revoked_at: Timestamp | None
    expires_at: Timestamp | None


class ApiKeyCreate(Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    restaurant_ids: list[uuid.UUID] = []
    require_signature: bool = False


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    restaurant_ids: list[uuid.UUID]
    created_at: Timestamp
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None


class ApiKeyIssued(ApiKeyOut):
    key: str = Field(description="Shown once; store it in the till's configuration.")
    signing_secret: str | None = Field(
        default=None, description="Shown once; present when the key requires signed requests."
    )
