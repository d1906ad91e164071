from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from maxloyalty.kit.timestamps import Timestamp
from maxloyalty.ledger.schemas import PostedTransaction

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class RewardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: str | None = Field(default=None, max_length=2000)
    points_price: int = Field(gt=0, le=10_000_000)
    restaurant_ids: list[uuid.UUID] = Field(default=[], description="Empty: every restaurant")
    stock: int | None = Field(default=None, ge=0, le=10**9, description="None: unlimited")
    active_from: AwareDatetime | None = None
    active_to: AwareDatetime | None = None
    is_active: bool = True
    image_url: str | None = Field(default=None, max_length=500)


class RewardUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    points_price: int | None = Field(default=None, gt=0, le=10_000_000)
    restaurant_ids: list[uuid.UUID] | None = None
    stock: int | None = Field(default=None, ge=0, le=10**9)
    active_from: AwareDatetime | None = None
    active_to: AwareDatetime | None = None
    is_active: bool | None = None
    image_url: str | None = Field(default=None, max_length=500)


class RewardOut(RewardIn):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    active_from: Timestamp | None = None
    active_to: Timestamp | None = None
    created_at: Timestamp


class RedeemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    restaurant_id: uuid.UUID
    guest_id: uuid.UUID | None = Field(default=None, description="Staff: whose card; guests: omit")


class RewardBought(BaseModel):
    """The reward as a redemption's answer names it."""

    id: uuid.UUID
    name: str
    points_price: int


class RewardRedeemed(BaseModel):
    """The answer to buying a reward (and its stored replay)."""

    operation_id: uuid.UUID
    card_id: uuid.UUID
    reward: RewardBought
    transactions: list[PostedTransaction]
    balance: int
