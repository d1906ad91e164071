from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from maxloyalty.loyalty.models import CardMode, LevelMetric, ProgramType, Rounding

Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LevelIn(_Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    min_spent: int = Field(ge=0, le=10**13, description="Kopecks of spend that reach this level")
    percentage: Percent
    birthday_bonus: int = Field(default=0, ge=0, le=1_000_000)
    purchase_bonus: int = Field(default=0, ge=0, le=1_000_000)
    free_item_code: str | None = Field(default=None, max_length=64)
    color: Color | None = None
    icon_url: str | None = Field(default=None, max_length=500)


class LevelOut(LevelIn):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    position: int


class CardDesign(_Strict):
    """How the guest's card and cabinet look: a template and its colours (hex, checked)."""

    template: Literal["classic", "minimal", "bold"] = "classic"
    background: Color = "#14171c"
    foreground: Color = "#ffffff"
    accent: Color = "#1f6feb"

    @classmethod
    def of(cls, stored: dict[str, Any]) -> CardDesign:
        """The design a programme keeps, its unknown or broken fields left at the default
        (rows written before the schema)."""
        known = {}
        for name in cls.model_fields:
            if name in stored:
                try:
                    cls.model_validate({name: stored[name]})
                except ValueError:
                    continue
                known[name] = stored[name]
        return cls.model_validate(known)


class ProgramSettings(_Strict):
    expiry_days: int | None = Field(default=None, ge=1, le=3650)
    pending_days: int | None = Field(default=None, ge=0, le=90)
    max_redeem_percent: Annotated[Decimal, Field(gt=0, le=100)] | None = None
    discount_cap_percent: Percent | None = None
    level_metric: LevelMetric | None = None
    rolling_days: int | None = Field(default=None, ge=1, le=3650)
    manual_approval_threshold: int | None = Field(default=None, ge=0, le=10**9)
    expiry_reminder_days: int | None = Field(default=None, ge=0, le=90)
    rounding: Rounding | None = None
    allow_guest_transfers: bool | None = None
    require_rotating_code: bool | None = Field(
        default=None,
        description="Identify only by the guest app's rotating code or QR (or the phone):"
        " the static 6-digit code and QR are refused",
    )
    design: CardDesign | None = Field(default=None, description="Card design: template, colours")


class ProgramCreate(ProgramSettings):
    type: ProgramType
    mode: CardMode = CardMode.UNIFIED
    restaurant_id: uuid.UUID | None = None
    levels: list[LevelIn] | None = Field(default=None, description="Default: the five levels")


class LogoOut(BaseModel):
    """The programme's uploaded logo (the image itself is served to guests' pages)."""

    model_config = ConfigDict(from_attributes=True)

    content_type: str = Field(description="image/png, image/jpeg or image/webp")
    size: int = Field(description="Bytes")
    sha256: str = Field(description="Hex digest of the bytes: the image's ETag")


class ProgramOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    restaurant_id: uuid.UUID | None
    type: ProgramType
    mode: CardMode
    expiry_days: int
    pending_days: int
    max_redeem_percent: Decimal
    discount_cap_percent: Decimal | None
    level_metric: LevelMetric
    rolling_days: int | None
    manual_approval_threshold: int
    expiry_reminder_days: int
    rounding: Rounding
    allow_guest_transfers: bool
    require_rotating_code: bool
    design: dict[str, Any]
    logo: LogoOut | None = None
    levels: list[LevelOut] = []
