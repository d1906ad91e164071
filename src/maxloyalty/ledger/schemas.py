from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import Header
from pydantic import BaseModel, ConfigDict, Field

from maxloyalty.kit.timestamps import Timestamp
from maxloyalty.ledger.models import TxChannel, TxSource, TxStatus, TxType


class TransactionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: Timestamp
    operation_id: uuid.UUID
    type: TxType
    status: TxStatus
    amount: int
    source: TxSource
    channel: TxChannel
    restaurant_id: uuid.UUID | None
    check_number: str | None
    check_amount: int | None
    paid_amount: int | None
    discount_amount: int | None
    percentage: Decimal | None
    reason: str | None
    reverses_id: uuid.UUID | None
    reward_item_id: uuid.UUID | None


class TransferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    restaurant_id: uuid.UUID
    to_card_id: uuid.UUID
    points: int = Field(gt=0, le=10_000_000)


# The header every posting route takes; `idempotency.require_key` insists on it.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Required. The same key with the same body replays the first answer.",
    ),
]
