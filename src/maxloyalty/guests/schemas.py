from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from maxloyalty.guests.models import Gender
from maxloyalty.identity.schemas import Phone
from maxloyalty.kit.schemas import Strict

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class IdentifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    restaurant_id: uuid.UUID
    qr: str | None = Field(default=None, max_length=200)
    code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")] | None = None
    phone: str | None = Field(default=None, max_length=32)
    check_amount: int | None = Field(default=None, gt=0, le=10**10, description="Kopecks")

    @model_validator(mode="after")
    def _one_identifier(self) -> IdentifyRequest:
        given = [x for x in (self.qr, self.code, self.phone) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of qr, code, phone")
        return self


class GuestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    restaurant_id: uuid.UUID
    first_name: Name | None = None
    last_name: Name | None = None
    birth_date: date | None = None
    gender: Gender | None = None


class Consents(BaseModel):
    privacy_policy: bool
    personal_data: bool
    marketing: bool = False


class RegisterRequest(Strict):
    phone: Phone
    tenant_id: uuid.UUID
    referral_code: str | None = Field(default=None, max_length=32)
    consents: Consents


class CodeSentOut(BaseModel):
    expires_in: int
    resend_after: int


class VerifyRequest(Strict):
    phone: Phone
    tenant_id: uuid.UUID
    code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")]


class TelegramLoginRequest(Strict):
    init_data: Annotated[str, StringConstraints(min_length=10, max_length=4096)]
    tenant_id: uuid.UUID
