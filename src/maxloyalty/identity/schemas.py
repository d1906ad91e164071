from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from maxloyalty.identity.principal import Role
from maxloyalty.kit.schemas import Strict

# Only a bound here: `contacts.normalize_phone` judges the number (422 `invalid_phone`).
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Password = Annotated[str, StringConstraints(min_length=10, max_length=256)]


class LoginRequest(Strict):
    login: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    tenant_id: uuid.UUID | None = None
    device_fingerprint: str | None = Field(default=None, max_length=128)


class PasswordChange(Strict):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    new_password: Password


class RefreshRequest(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=10, max_length=200)]


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


class MeOut(BaseModel):
    subject: uuid.UUID
    role: Role
    tenant_id: uuid.UUID | None
    restaurant_ids: list[uuid.UUID]
