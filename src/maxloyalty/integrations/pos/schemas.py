"""Requests and answers of the POS APIs: integrations and their logs (admin), the generic
till API (a till's check, quotes, holds), and the iiko webhook receiver."""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from maxloyalty.integrations.pos.models import PosIntegration, PosSystem
from maxloyalty.kit.timestamps import Timestamp


class LevelMapping(BaseModel):
    """R-Keeper's own bonus and discount type numbers for one of our levels."""

    model_config = ConfigDict(extra="forbid")

    bonus: int = Field(default=0, ge=0, le=2**31 - 1)
    discount: int = Field(default=0, ge=0, le=2**31 - 1)


class IntegrationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    levels: dict[str, LevelMapping] | None = Field(
        default=None, max_length=50, description="R-Keeper: level name → bonus/discount numbers"
    )
    terminal_group_id: uuid.UUID | None = Field(
        default=None, description="iiko: only this terminal group's orders count here"
    )


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_login: str = Field(min_length=1, max_length=200, description="iikoCloud apiLogin")
    base_url: str | None = Field(
        default=None, max_length=200, description="iikoCloud address; default: production"
    )


class IntegrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    restaurant_id: uuid.UUID
    system: PosSystem
    name: str = Field(min_length=1, max_length=120)
    credentials: Credentials | None = None
    external_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="iiko organization id, or the R-Keeper restaurant code",
    )
    settings: IntegrationSettings = IntegrationSettings()
    hold_ttl_seconds: int = Field(default=900, ge=30, le=86400)
    require_signature: bool = Field(default=False, description="Tills must sign requests")


class IntegrationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_nulls(self) -> IntegrationPatch:
        cleared = {"name", "is_active", "settings", "hold_ttl_seconds"} & {
            name for name in self.model_fields_set if getattr(self, name) is None
        }
        if cleared:
            raise ValueError(f"{', '.join(sorted(cleared))} cannot be null")
        return self

    name: str | None = Field(default=None, min_length=1, max_length=120)
    is_active: bool | None = None
    credentials: Credentials | None = None
    external_id: str | None = Field(default=None, min_length=1, max_length=128)
    settings: IntegrationSettings | None = None
    hold_ttl_seconds: int | None = Field(default=None, ge=30, le=86400)


class IntegrationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    restaurant_id: uuid.UUID
    system: PosSystem
    name: str
    api_key_id: uuid.UUID
    has_credentials: bool
    external_id: str | None
    settings: dict[str, Any]
    hold_ttl_seconds: int
    is_active: bool
    last_sync_at: Timestamp | None
    created_at: Timestamp

    @classmethod
    def of(cls, row: PosIntegration) -> IntegrationOut:
        fields = {name: getattr(row, name) for name in cls.model_fields if hasattr(row, name)}
        return cls.model_validate(fields | {"has_credentials": row.credentials is not None})


class IntegrationSecrets(IntegrationOut):
    api_key: str = Field(description="mlk_…: shown once; the till authenticates with it")
    signing_secret: str | None = Field(description="Shown once, when requests are signed")
    webhook_token: str | None = Field(description="iiko: miw_…, shown once")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require_signature: bool | None = Field(default=None, description="Default: as the current key")


class PosTransactionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    card_id: uuid.UUID | None
    ledger_operation_id: uuid.UUID | None
    operation: str
    order_id: str
    check_amount: int
    items: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    points_accrued: int
    points_redeemed: int
    discount_applied: int
    status: str
    error: str | None
    created_at: Timestamp


class PosEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_type: str
    external_id: str | None
    payload: dict[str, Any]
    status: str
    detail: str | None
    received_at: Timestamp
    processed_at: Timestamp | None


class PosSyncOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    direction: str
    operation: str
    status: str
    attempt: int
    error: str | None
    result: dict[str, Any]
    next_retry_at: Timestamp | None
    created_at: Timestamp
    finished_at: Timestamp | None


class EventsReceived(BaseModel):
    received: int = Field(description="Events kept and handed to the worker")


class CheckLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, description="The till's item code")
    name: str = Field(min_length=1, max_length=200)
    category: str | None = Field(default=None, max_length=200)
    price: int = Field(ge=0, le=10**9, description="Kopecks per unit")
    quantity: Decimal = Field(gt=0, le=10**4, decimal_places=3)

    @property
    def total(self) -> int:
        return int((self.price * self.quantity).to_integral_value(ROUND_HALF_UP))


class Payment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=64, description="cash, card, points, …")
    amount: int = Field(ge=0, le=10**10, description="Kopecks")


ORDER_ID_PATTERN = r"^[\w.:/-]+$"
# A till's own reference (an order, a return receipt): what may follow in a path or a key.
TillRef = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ORDER_ID_PATTERN)]


class CalculateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_id: uuid.UUID
    lines: list[CheckLine] = Field(min_length=1, max_length=500)
    points: int | None = Field(default=None, ge=0, le=10**7, description="Points to spend")
    order_id: TillRef | None = Field(
        default=None, description="The order, when it holds points: they count as free for it"
    )


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_id: uuid.UUID
    points: int = Field(gt=0, le=10**7)
    check_amount: int = Field(gt=0, le=10**10, description="Kopecks")
    ttl_seconds: int | None = Field(
        default=None, ge=1, le=86400, description="Default: the integration's"
    )


class CommitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_id: uuid.UUID | None = Field(default=None, description="Default: the held card")
    amount: int = Field(gt=0, le=10**10, description="The closed check, kopecks")
    points: int | None = Field(
        default=None, ge=0, le=10**7, description="Points spent; default: the held points"
    )
    lines: list[CheckLine] = Field(default=[], max_length=500)
    payments: list[Payment] = Field(default=[], max_length=50)


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int | None = Field(default=None, gt=0, le=10**10, description="Default: the rest")
    refund_id: TillRef | None = Field(
        default=None,
        description="The till's return receipt: a partial refund is posted once per id",
    )


class EffectOut(BaseModel):
    """What a campaign adds to a quote."""

    source: str = Field(description="e.g. campaign:<id>")
    description: str
    discount: int = Field(description="Kopecks off the check")
    bonus_points: int


class QuoteOut(BaseModel):
    card_id: uuid.UUID
    check_amount: int = Field(description="Kopecks")
    discount_percent: str
    discount: int = Field(description="Kopecks")
    available: int = Field(description="Points free to spend")
    max_redeemable: int
    points_to_spend: int
    paid_amount: int = Field(description="Kopecks")
    accrual: int = Field(description="Points the check would earn")
    effects: list[EffectOut]


class HoldOut(BaseModel):
    hold_id: uuid.UUID
    order_id: str
    card_id: uuid.UUID
    points: int
    status: str
    expires_at: Timestamp


class HeldOut(HoldOut):
    """A hold just placed, with the card's balance and points free to spend after it."""

    balance: int
    available: int


class PosIdentifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    qr: str | None = Field(default=None, max_length=200)
    code: str | None = Field(default=None, pattern=r"^\d{6}$")
    phone: str | None = Field(default=None, max_length=32)
    card_number: str | None = Field(default=None, pattern=r"^\d{1,6}$")
    check_amount: int | None = Field(default=None, gt=0, le=10**10, description="Kopecks")

    @model_validator(mode="after")
    def _one_identifier(self) -> PosIdentifyRequest:
        given = [x for x in (self.qr, self.code, self.phone, self.card_number) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of qr, code, phone, card_number")
        return self
