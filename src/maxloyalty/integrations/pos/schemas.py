"""Requests and answers of the POS APIs: integrations and their logs (admin), the generic
till API, and the iiko webhook receiver."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
