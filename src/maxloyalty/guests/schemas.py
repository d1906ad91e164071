from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from maxloyalty.guests.models import CardStatus, Channel, Gender
from maxloyalty.identity.models import ConsentKind
from maxloyalty.identity.schemas import Phone
from maxloyalty.kit.schemas import Strict
from maxloyalty.kit.timestamps import Timestamp

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


# --- registration at the till, the guest list, card status -------------------------------


class GuestRegistered(BaseModel):
    guest_id: uuid.UUID
    card_id: uuid.UUID
    code: str


class GuestFilters(BaseModel):
    """What the guest list is narrowed by (the query parameters of the list)."""

    q: str | None = None
    level: str | None = None
    status: CardStatus | None = None
    min_balance: int | None = None


class GuestRow(BaseModel):
    """One guest of the list (a row of the CSV download too, in this order)."""

    guest_id: uuid.UUID
    card_id: uuid.UUID
    code: str
    first_name: str | None
    last_name: str | None
    phone: str | None
    level: str | None
    balance: int
    lifetime_spent: int
    total_visits: int
    last_visit_at: Timestamp | None
    status: CardStatus


class CardStatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: CardStatus
    reason: str | None = Field(default=None, max_length=500)


class CardStatusOut(BaseModel):
    card_id: uuid.UUID
    status: CardStatus


class RotatingCodeOut(BaseModel):
    """What the guest app shows for this minute: a code to type and a QR to scan."""

    code: str = Field(description="6 digits; typed in `code` at identification")
    qr: str = Field(description="`ML2.…` payload; scanned into `qr` at identification")
    expires_at: Timestamp = Field(description="Both stop working at this moment")
    valid_seconds: int = Field(description="Seconds from now until `expires_at` (rounded up)")


# --- the guest's own profile --------------------------------------------------------------


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: Name | None = None
    last_name: Name | None = None
    middle_name: Name | None = None
    gender: Gender | None = None
    birth_date: date | None = None
    city: str | None = Field(default=None, max_length=120)
    avatar_url: str | None = Field(default=None, max_length=500)
    telegram_username: str | None = Field(default=None, max_length=64)
    preferred_channel: Channel | None = None


class ChildIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    birth_date: date | None = None


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ConsentKind
    granted: bool


class ChildOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    birth_date: date | None


class ProfileCardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    balance: int
    status: CardStatus


class ProfileFields(BaseModel):
    """The guest's profile in this network, as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    first_name: str | None
    last_name: str | None
    middle_name: str | None
    gender: Gender | None
    birth_date: date | None
    city: str | None
    avatar_url: str | None
    telegram_username: str | None
    preferred_channel: Channel
    created_at: Timestamp
    updated_at: Timestamp


class ProfileOut(ProfileFields):
    """The guest's profile in this network, with their children and cards."""

    children: list[ChildOut]
    cards: list[ProfileCardOut]


class ConsentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: ConsentKind
    granted: bool
    recorded_at: Timestamp
