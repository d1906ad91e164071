from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from maxloyalty.identity.guest_auth import Consents
from maxloyalty.identity.principal import Role
from maxloyalty.kit.timestamps import Timestamp


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Only a bound here: `contacts.normalize_phone` judges the number (422 `invalid_phone`).
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Password = Annotated[str, StringConstraints(min_length=10, max_length=256)]


class LoginRequest(_Strict):
    login: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    tenant_id: uuid.UUID | None = None
    device_fingerprint: str | None = Field(default=None, max_length=128)


class PasswordChange(_Strict):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    new_password: Password


class RefreshRequest(_Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=10, max_length=200)]


class RegisterRequest(_Strict):
    phone: Phone
    tenant_id: uuid.UUID
    referral_code: str | None = Field(default=None, max_length=32)
    consents: Consents


class CodeSentOut(BaseModel):
    expires_in: int
    resend_after: int


class VerifyRequest(_Strict):
    phone: Phone
    tenant_id: uuid.UUID
    code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")]


class TelegramLoginRequest(_Strict):
    init_data: Annotated[str, StringConstraints(min_length=10, max_length=4096)]
    tenant_id: uuid.UUID


class MeOut(BaseModel):
    subject: uuid.UUID
    role: Role
    tenant_id: uuid.UUID | None
    restaurant_ids: list[uuid.UUID]


StaffRole = Annotated[Role, Field(description="RESTAURANT_ADMIN, MANAGER or CASHIER")]


class StaffCreate(_Strict):
    email: EmailStr | None = None
    phone: Phone | None = None
    password: Password
    role: StaffRole
    restaurant_ids: list[uuid.UUID] = []


class StaffUpdate(_Strict):
    role: StaffRole | None = None
    restaurant_ids: list[uuid.UUID] | None = None
    is_active: bool | None = None


class BlockRequest(_Strict):
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


class PermissionCreate(_Strict):
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


class ApiKeyCreate(_Strict):
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
