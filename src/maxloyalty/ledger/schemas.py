"""The ledger's requests and answers. An idempotent operation's answer is stored as its
model's `model_dump(mode="json", exclude_unset=True)` and replayed through the same model,
so a replay answers exactly what the first request did."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Header
from pydantic import BaseModel, ConfigDict, Field, model_validator

from maxloyalty.guests.models import CardStatus
from maxloyalty.kit.timestamps import Timestamp
from maxloyalty.ledger.models import PointTransaction, TxChannel, TxSource, TxStatus, TxType
from maxloyalty.loyalty.models import LoyaltyLevel, ProgramType

OperationType = Literal["SALE", "REDEMPTION", "MANUAL", "REFUND"]


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


class LedgerRowOut(TransactionOut):
    """A row of the network's ledger, with the card it is on."""

    card_id: uuid.UUID
    card_code: str


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


class CashierRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: OperationType
    restaurant_id: uuid.UUID
    amount: int | None = Field(default=None, gt=0, le=10**10, description="Kopecks")
    points: int | None = Field(default=None, ge=-(10**7), le=10**7)
    check_number: str | None = Field(default=None, min_length=1, max_length=64)
    refund_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="REFUND: the return receipt; a partial refund is posted once per id",
    )
    reason: str | None = Field(default=None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _fields_for_type(self) -> CashierRequest:
        need: dict[str, tuple[str, ...]] = {
            "SALE": ("amount",),
            "REDEMPTION": ("amount", "points"),
            "MANUAL": ("points", "reason"),
            "REFUND": ("check_number",),
        }
        missing = [f for f in need[self.type] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"{self.type} needs {', '.join(missing)}")
        if self.type in {"SALE", "REDEMPTION"} and self.points is not None and self.points <= 0:
            raise ValueError(f"{self.type} takes points > 0 (points spent on the check)")
        if self.type == "REDEMPTION" and not self.points:
            raise ValueError("REDEMPTION needs points > 0")
        if self.type == "REFUND" and self.points is not None:
            raise ValueError("REFUND takes an amount of the check, not points")
        if self.type != "REFUND" and self.refund_id is not None:
            raise ValueError("only a REFUND takes a refund_id")
        if self.type == "MANUAL" and self.points == 0:
            raise ValueError("MANUAL needs points other than 0")
        return self


class PostedTransaction(BaseModel):
    """A ledger row as an operation's answer shows it."""

    id: uuid.UUID
    type: TxType
    status: TxStatus
    amount: int
    created_at: Timestamp

    @classmethod
    def of(cls, tx: PointTransaction) -> PostedTransaction:
        return cls(
            id=tx.id, type=tx.type, status=tx.status, amount=tx.amount, created_at=tx.created_at
        )


class LevelOut(BaseModel):
    id: uuid.UUID
    name: str
    percentage: Decimal

    @classmethod
    def of(cls, level: LoyaltyLevel | None) -> LevelOut | None:
        if level is None:
            return None
        return cls(id=level.id, name=level.name, percentage=level.percentage)


class OperationEffect(BaseModel):
    """What one kind of operation did to the card. The fields of one kind only are set:
    `check_amount`/`paid_amount` for a check, `refunded_amount`, `returned_points` and
    `reversed_points` for a refund; an answer carries the fields that are set."""

    status: Literal["COMPLETED", "PENDING_APPROVAL"]
    transactions: list[PostedTransaction]
    accrued: int
    redeemed: int
    discount: int
    unrecovered_points: int
    check_amount: int | None = None
    paid_amount: int | None = None
    refunded_amount: int | None = None
    returned_points: int | None = None
    reversed_points: int | None = None


class OperationOut(OperationEffect):
    """The answer to a cashier operation (and its stored replay)."""

    operation_id: uuid.UUID
    guest_id: uuid.UUID
    card_id: uuid.UUID
    type: OperationType
    balance: int
    pending_balance: int
    level: LevelOut | None
    level_changed: LevelOut | None


class TransferOut(BaseModel):
    operation_id: uuid.UUID
    from_card_id: uuid.UUID
    to_card_id: uuid.UUID
    points: int
    transactions: list[PostedTransaction]
    balance: int


class DecisionOut(PostedTransaction):
    """A manual operation once approved or rejected, and the card's balance after it."""

    card_id: uuid.UUID
    balance: int


class NextLevel(BaseModel):
    name: str
    min_spent: int
    remaining_spend: int


class NearestExpiry(BaseModel):
    at: Timestamp
    points: int


class BalanceOut(BaseModel):
    card_id: uuid.UUID
    guest_id: uuid.UUID
    code: str
    status: CardStatus
    program_type: ProgramType
    balance: int
    pending_balance: int
    lifetime_spent: int
    level: LevelOut | None
    next_level: NextLevel | None
    nearest_expiry: NearestExpiry | None


class IdentifiedCard(BaseModel):
    """What a till shows once the guest is known."""

    guest_id: uuid.UUID
    card_id: uuid.UUID
    code: str
    name: str | None
    status: CardStatus
    program_type: ProgramType
    level: LevelOut | None
    balance: int
    available: int
    pending_balance: int
    discount_percent: Decimal
    max_redeemable: int | None


Answer = TypeVar("Answer", bound=BaseModel)


@dataclass(frozen=True)
class Outcome(Generic[Answer]):
    """An idempotent operation's answer: done now, or an earlier request's answer replayed
    (`stored_status` is then the status stored with it)."""

    answer: Answer
    stored_status: int | None = None

    @property
    def replayed(self) -> bool:
        return self.stored_status is not None

    def dump(self) -> dict[str, Any]:
        """The answer as it is stored, sent and published."""
        return self.answer.model_dump(mode="json", exclude_unset=True)
