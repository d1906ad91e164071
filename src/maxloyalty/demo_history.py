"""Guests and a year of their visits for the demo network, written in bulk.

Posting some twenty thousand back-dated operations through the services took about two
minutes, so the history is played out here in memory instead, card by card in time order,
by the rules the services apply (accrual, redemption limits, levels and expiry come from
`loyalty.service` and `ledger.core`; spends draw the soonest-expiring lots first; a refund
gives redeemed points back to their lots and takes the accrual back from its own), and
written with multi-row INSERTs in the caller's tenant transaction. The rows keep what
`maxloyalty ledger verify` checks: every balance is the sum of its card's completed rows
and of its lots' remaining points, every lot's remaining is its amount less its
allocations.

Each guest aims at a level of the programme, so every level has guests: the spend is drawn
inside that level's band and the last visit's check tops it up if redemptions and refunds
left it short.
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.models import (
    CardStatus,
    Gender,
    GuestCard,
    GuestProfile,
    RegistrationSource,
)
from maxloyalty.identity.models import User, UserRole
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.service.contacts import normalize_phone, phone_index
from maxloyalty.integrations.pos.models import PosTransaction, PosTransactionStatus
from maxloyalty.kit.ids import uuid7
from maxloyalty.kit.models import Base
from maxloyalty.ledger.models import (
    LedgerOperation,
    LotAllocation,
    PointLot,
    PointTransaction,
    TxChannel,
    TxSource,
    TxStatus,
    TxType,
)
from maxloyalty.ledger.schemas import LevelOut, OperationOut, PostedTransaction
from maxloyalty.ledger.service.core import end_of_day
from maxloyalty.ledger.service.idempotency import request_hash
from maxloyalty.ledger.service.operations import CashierRequest, business_key_of, channel_for
from maxloyalty.loyalty.models import (
    LoyaltyLevel,
    LoyaltySystem,
    ProgramType,
    TierChange,
    TierChangeReason,
)
from maxloyalty.loyalty.service import (
    KOPECKS_PER_POINT,
    accrual_points,
    discount_percent,
    level_for,
    levels_of,
    max_redeemable,
    percent_of,
)
from maxloyalty.network.models import Restaurant, Tenant
from maxloyalty.rewards.models import RedemptionItem
from maxloyalty.rewards.schemas import RewardRedeemed

FIRST = {
    Gender.FEMALE: ["Анна", "Мария", "Елена", "Ольга", "Наталья", "Ирина", "Дарья", "Алина"],
    Gender.MALE: ["Иван", "Дмитрий", "Алексей", "Сергей", "Андрей", "Михаил", "Павел", "Артём"],
}
LAST = {
    Gender.FEMALE: ["Иванова", "Смирнова", "Кузнецова", "Попова", "Соколова", "Лебедева"],
    Gender.MALE: ["Иванов", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев"],
}
MANUAL_REASONS = [
    "Компенсация: долгое ожидание заказа",
    "Благодарность за отзыв",
    "Исправление: карту не отсканировали",
]
# Median check in rubles by level position (guests higher up spend more a visit).
CHECK_RUBLES = {ProgramType.POINTS: 1500, ProgramType.DISCOUNT: 350}
# Rows are written parents first (foreign keys).
WRITE_ORDER: list[type[Base]] = [
    User,
    UserRole,
    GuestProfile,
    GuestCard,
    LedgerOperation,
    PointTransaction,
    PointLot,
    LotAllocation,
    TierChange,
    PosTransaction,
]


_Event = tuple[datetime, int, str, Any]  # when, order, kind, what


def _tx_out(tx: PointTransaction) -> dict[str, Any]:
    """A row as an operation's stored answer shows it."""
    return PostedTransaction.of(tx).model_dump(mode="json")


def _level_out(level: LoyaltyLevel | None) -> dict[str, Any] | None:
    found = LevelOut.of(level)
    return found.model_dump(mode="json") if found else None


@dataclass(frozen=True)
class Hands:
    """Who posts the demo's operations: each restaurant's cashier and, where it has one,
    its till (most checks there come through it); the manager's manual credits."""

    cashiers: dict[uuid.UUID, Principal]
    tills: dict[uuid.UUID, Principal]
    manager: Principal
    # A till's rows name its kind (R-Keeper, iiko, …), as `pos.service.ledger_context` does.
    till_channels: dict[uuid.UUID, TxChannel]

    def channel(self, by: Principal | None) -> TxChannel:
        if by is None:
            return TxChannel.SYSTEM
        return self.till_channels.get(by.subject) or channel_for(by)


@dataclass(slots=True)
class _Card:
    row: dict[str, Any]  # the guest_cards row, written once its history is played
    level: LoyaltyLevel | None
    target: LoyaltyLevel | None  # the level this guest's spend is drawn for
    lots: list[dict[str, Any]] = field(default_factory=list)  # with points left, soonest first


@dataclass(slots=True)
class _Check:
    """A posted check, for a refund of it."""

    where: uuid.UUID
    by: Principal
    number: str
    amount: int
    accrual: dict[str, Any]
    lot: dict[str, Any] | None
    redemption: dict[str, Any] | None
    drawn: list[tuple[dict[str, Any], int]]


class _Book:
    """The tenant's ledger being played: rows to write, keyed by model."""

    def __init__(
        self,
        tenant: Tenant,
        system: LoyaltySystem,
        levels: list[LoyaltyLevel],
        rewards: list[RedemptionItem],
        rng: random.Random,
        now: datetime,
        hands: Hands,
    ) -> None:
        self.tenant, self.system, self.levels, self.hands = tenant, system, levels, hands
        self.rewards, self.rng, self.now = rewards, rng, now
        self.stock = {item.id: item.stock for item in rewards}
        self.rows: dict[type[Base], list[dict[str, Any]]] = defaultdict(list)

    # -- rows ---------------------------------------------------------------------------

    def _operation(
        self,
        card: _Card,
        when: datetime,
        kind: str,
        fingerprint: str,
        *,
        by: Principal | None,
        business_key: str | None = None,
    ) -> dict[str, Any]:
        """The ledger_operations row (`idempotency.claim`); the answer is filled in later."""
        row = {
            "id": uuid7(),
            "tenant_id": self.tenant.id,
            "kind": kind,
            "card_id": card.row["id"],
            "idempotency_key": uuid.UUID(int=self.rng.getrandbits(128)).hex if by else None,
            "business_key": business_key,
            "request_hash": fingerprint,
            "response": {},
            "status_code": 201,
            "created_at": when,
            "created_by": by.subject if by else None,
        }
        self.rows[LedgerOperation].append(row)
        return row

    def _cashier_operation(
        self, card: _Card, when: datetime, by: Principal, request: CashierRequest
    ) -> dict[str, Any]:
        # Fingerprinted as `operations.execute` does, so a replay would match.
        fingerprint = request_hash(
            str(card.row["user_id"]), request.model_dump(mode="json", exclude={"refund_id"})
        )
        return self._operation(
            card,
            when,
            request.type,
            fingerprint,
            by=by,
            business_key=business_key_of(request),
        )

    def _tx(
        self,
        card: _Card,
        operation_id: uuid.UUID,
        type: TxType,
        amount: int,
        when: datetime,
        *,
        by: Principal | None,
        where: uuid.UUID | None = None,
        check_number: str | None = None,
        check_amount: int | None = None,
        paid_amount: int | None = None,
        discount_amount: int | None = None,
        level: LoyaltyLevel | None = None,
        reason: str | None = None,
        reverses_id: uuid.UUID | None = None,
        reward_item_id: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        """A point_transactions row, every column named (as `core.Entry.row` fills them)."""
        if by is None:
            source = TxSource.SYSTEM
        else:
            source = TxSource.MANUAL if type is TxType.MANUAL else TxSource.POS
        row = {
            "id": uuid7(),
            "created_at": when,
            "tenant_id": self.tenant.id,
            "card_id": card.row["id"],
            "operation_id": operation_id,
            "type": type,
            "status": TxStatus.COMPLETED,
            "amount": amount,
            "source": source,
            "channel": self.hands.channel(by),
            "source_id": str(by.subject) if by else None,
            "restaurant_id": where,
            "check_number": check_number,
            "check_amount": check_amount,
            "paid_amount": paid_amount,
            "discount_amount": discount_amount,
            "level_id": level.id if level else None,
            "percentage": level.percentage if level else None,
            "reason": reason,
            "reverses_id": reverses_id,
            "reward_item_id": reward_item_id,
            "campaign_id": None,
            "created_by_user_id": by.subject if by and by.role is not Role.SYSTEM else None,
            "approved_by_user_id": None,
            "status_changed_at": None,
        }
        self.rows[PointTransaction].append(row)
        return row

    def _allocate(self, lot: dict[str, Any], tx: dict[str, Any], amount: int) -> None:
        lot["remaining"] -= amount
        self.rows[LotAllocation].append(
            {
                "id": uuid7(),
                "tenant_id": self.tenant.id,
                "lot_id": lot["id"],
                "transaction_id": tx["id"],
                "amount": amount,
                "created_at": tx["created_at"],
            }
        )

    def _credit(self, card: _Card, tx: dict[str, Any]) -> dict[str, Any]:
        """The lot behind a credit (`core.apply_credit`); no pending days in the demo."""
        when = tx["created_at"]
        lot = {
            "id": uuid7(),
            "tenant_id": self.tenant.id,
            "card_id": card.row["id"],
            "transaction_id": tx["id"],
            "amount": tx["amount"],
            "remaining": tx["amount"],
            "created_at": when,
            "activates_at": when,
            "activated": True,
            "expires_at": end_of_day(
                when + timedelta(days=self.system.expiry_days), self.tenant.timezone
            ),
        }
        self.rows[PointLot].append(lot)
        # Credits come in time order and expire a fixed time later: appending keeps the
        # soonest-expiring lot first.
        card.lots.append(lot)
        card.row["balance"] += tx["amount"]
        return lot

    def _debit(self, card: _Card, tx: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
        """Draw a spend from the soonest-expiring lots (`core.apply_debit`)."""
        wanted, drawn = -tx["amount"], []
        while wanted:
            lot = card.lots[0]
            take = min(lot["remaining"], wanted)
            self._allocate(lot, tx, take)
            drawn.append((lot, take))
            wanted -= take
            if not lot["remaining"]:
                card.lots.pop(0)
        card.row["balance"] += tx["amount"]
        return drawn

    def _reevaluate(
        self, card: _Card, when: datetime, reason: TierChangeReason, operation_id: uuid.UUID
    ) -> LoyaltyLevel | None:
        """`ledger.levels.reevaluate` on lifetime spend."""
        target = level_for(self.levels, card.row["lifetime_spent"])
        if target is card.level:
            return None
        self.rows[TierChange].append(
            {
                "id": uuid7(),
                "tenant_id": self.tenant.id,
                "card_id": card.row["id"],
                "from_level_id": card.level.id if card.level else None,
                "to_level_id": target.id if target else None,
                "reason": reason,
                "operation_id": operation_id,
                "created_at": when,
            }
        )
        card.level = target
        card.row["level_id"] = target.id if target else None
        return target

    def _answer(
        self,
        card: _Card,
        operation: dict[str, Any],
        body: dict[str, Any],
        new_level: LoyaltyLevel | None,
    ) -> None:
        """The answer `operations.execute` stores for replays (through its model, so that a
        replay of a demo operation answers as one of the API's would)."""
        answer = body | {
            "operation_id": str(operation["id"]),
            "guest_id": str(card.row["user_id"]),
            "card_id": str(card.row["id"]),
            "type": operation["kind"],
            "balance": card.row["balance"],
            "pending_balance": 0,
            "level": _level_out(card.level),
            "level_changed": _level_out(new_level),
        }
        operation["response"] = OperationOut.model_validate(answer).model_dump(
            mode="json", exclude_unset=True
        )

    def _till_record(
        self, card: _Card, operation: dict[str, Any], check: _Check, check_amount: int, paid: int
    ) -> None:
        """What the till sent, beside the ledger's answer (`pos.service.record_check`)."""
        answer = operation["response"]
        self.rows[PosTransaction].append(
            {
                "id": uuid7(),
                "tenant_id": self.tenant.id,
                "integration_id": check.by.subject,
                "card_id": card.row["id"],
                "ledger_operation_id": operation["id"],
                "operation": answer["type"],
                "order_id": check.number,
                "check_number": check.number,
                "check_amount": check_amount,
                "items": [],
                "payments": [{"type": "card", "amount": paid}],
                "raw": None,
                "points_accrued": answer["accrued"],
                "points_redeemed": answer["redeemed"],
                "discount_applied": answer["discount"],
                "status": PosTransactionStatus.PROCESSED,
                "error": None,
                "created_at": operation["created_at"],
            }
        )

    # -- operations ---------------------------------------------------------------------

    def settle(self, card: _Card, now: datetime) -> None:
        """Book the expiry of every lot past its end of day, at the local midnight the
        daily job would have (`core.expire_lot`), one operation per night."""
        nights: dict[datetime, uuid.UUID] = {}
        while card.lots and card.lots[0]["expires_at"] < now:
            lot = card.lots.pop(0)
            when = lot["expires_at"] + timedelta(microseconds=1)
            tx = self._tx(
                card,
                nights.setdefault(when, uuid.uuid4()),
                TxType.EXPIRATION,
                -lot["remaining"],
                when,
                by=None,
                reason="points expired",
                reverses_id=lot["transaction_id"],
            )
            self._allocate(lot, tx, lot["remaining"])
            card.row["balance"] += tx["amount"]

    def sale(
        self, card: _Card, when: datetime, where: uuid.UUID, by: Principal, amount: int, points: int
    ) -> _Check:
        """A closed check, `points` of it paid with points (`operations._sale`)."""
        number = f"D{self.rng.getrandbits(48):012x}"
        request = CashierRequest(
            type="REDEMPTION" if points else "SALE",
            restaurant_id=where,
            amount=amount,
            points=points or None,
            check_number=number,
        )
        operation = self._cashier_operation(card, when, by, request)
        level = card.level
        common: dict[str, Any] = {
            "by": by,
            "where": where,
            "check_number": number,
            "check_amount": amount,
            "level": level,
        }
        redemption, drawn, lot, discount = None, [], None, 0
        if self.system.type is ProgramType.DISCOUNT:
            discount = percent_of(amount, discount_percent(self.system, level))
            paid = amount - discount
            accrual = self._tx(
                card,
                operation["id"],
                TxType.ACCRUAL,
                0,
                when,
                paid_amount=paid,
                discount_amount=discount,
                **common,
            )
        else:
            if points:
                redemption = self._tx(
                    card, operation["id"], TxType.REDEMPTION, -points, when, **common
                )
                drawn = self._debit(card, redemption)
            paid = amount - points * KOPECKS_PER_POINT
            accrued = accrual_points(paid, level, self.system.rounding)
            accrual = self._tx(
                card, operation["id"], TxType.ACCRUAL, accrued, when, paid_amount=paid, **common
            )
            lot = self._credit(card, accrual) if accrued else None
        card.row["lifetime_spent"] += paid
        card.row["total_visits"] += 1
        card.row["last_visit_at"] = card.row["last_activity_at"] = when
        new_level = self._reevaluate(card, when, TierChangeReason.PURCHASE, operation["id"])
        rows = [redemption, accrual] if redemption else [accrual]
        self._answer(
            card,
            operation,
            {
                "status": "COMPLETED",
                "transactions": [_tx_out(PointTransaction(**tx)) for tx in rows],
                "check_amount": amount,
                "paid_amount": paid,
                "accrued": accrual["amount"],
                "redeemed": points,
                "discount": discount,
                "unrecovered_points": 0,
            },
            new_level,
        )
        check = _Check(where, by, number, amount, accrual, lot, redemption, drawn)
        if by.role is Role.SYSTEM:
            self._till_record(card, operation, check, amount, paid)
        return check

    def refund(self, card: _Card, when: datetime, check: _Check) -> None:
        """A whole check refunded (`operations._refund`): redeemed points back to lots that
        have not expired, the accrual taken back from its own lot. Only refunds that leave
        the accrual's lot untouched are played, so nothing is ever unrecovered, and none
        that would drop the guest below the level their spend was drawn for."""
        paid = check.accrual["paid_amount"]
        floor = card.target.min_spent if card.target else 0
        if (check.lot and check.lot["remaining"] < check.lot["amount"]) or (
            card.row["lifetime_spent"] - paid < floor
        ):
            return
        request = CashierRequest(
            type="REFUND", restaurant_id=check.where, check_number=check.number
        )
        operation = self._cashier_operation(card, when, check.by, request)
        take = check.accrual["amount"]
        common: dict[str, Any] = {
            "by": check.by,
            "where": check.where,
            "check_number": check.number,
            "check_amount": check.amount,
        }
        rows = []
        if check.redemption:
            back = [(lot, taken) for lot, taken in check.drawn if lot["expires_at"] > when]
            returned = sum(taken for _, taken in back)
            tx = self._tx(
                card,
                operation["id"],
                TxType.REVERSAL,
                returned,
                when,
                reverses_id=check.redemption["id"],
                paid_amount=None if take else paid,
                **common,
            )
            for lot, taken in back:
                if not lot["remaining"]:
                    card.lots.append(lot)
                self._allocate(lot, tx, -taken)
            card.lots.sort(key=lambda lot: (lot["expires_at"], lot["created_at"]))
            card.row["balance"] += returned
            rows.append(tx)
        if take:
            assert check.lot is not None
            tx = self._tx(
                card,
                operation["id"],
                TxType.REVERSAL,
                -take,
                when,
                reverses_id=check.accrual["id"],
                paid_amount=paid,
                **common,
            )
            self._allocate(check.lot, tx, take)
            card.lots.remove(check.lot)
            card.row["balance"] -= take
            rows.append(tx)
        if not rows:  # a check that moved no points: the refund is on the record all the same
            rows.append(
                self._tx(
                    card,
                    operation["id"],
                    TxType.REVERSAL,
                    0,
                    when,
                    reverses_id=check.accrual["id"],
                    paid_amount=paid,
                    **common,
                )
            )
        card.row["lifetime_spent"] -= paid
        card.row["last_activity_at"] = when
        for original in filter(None, [check.accrual, check.redemption]):
            original["status"], original["status_changed_at"] = TxStatus.REVERSED, when
        new_level = self._reevaluate(card, when, TierChangeReason.REFUND, operation["id"])
        self._answer(
            card,
            operation,
            {
                "status": "COMPLETED",
                "transactions": [_tx_out(PointTransaction(**tx)) for tx in rows],
                "refunded_amount": check.amount,
                "accrued": 0,
                "redeemed": 0,
                "returned_points": sum(tx["amount"] for tx in rows if tx["amount"] > 0),
                "reversed_points": -sum(tx["amount"] for tx in rows if tx["amount"] < 0),
                "discount": 0,
                "unrecovered_points": 0,
            },
            new_level,
        )
        if check.by.role is Role.SYSTEM:
            self._till_record(card, operation, check, check.amount, paid)

    def _offered(self, item: RedemptionItem, when: datetime, where: uuid.UUID) -> bool:
        """`rewards.service.redeem`'s test, with the stock as it stood then."""
        return (
            item.is_active
            and (item.active_from is None or item.active_from <= when)
            and (item.active_to is None or when < item.active_to)
            and (not item.restaurant_ids or where in item.restaurant_ids)
            and self.stock[item.id] != 0
        )

    def reward(self, card: _Card, when: datetime, where: uuid.UUID, by: Principal) -> None:
        """A reward bought with points, if one on offer is within the balance (the
        cheaper, the likelier)."""
        affordable = [
            item
            for item in self.rewards
            if item.points_price <= card.row["balance"] and self._offered(item, when, where)
        ]
        if not affordable:
            return
        item = self.rng.choices(affordable, [item.points_price**-0.5 for item in affordable])[0]
        guest = str(card.row["user_id"])
        operation = self._operation(
            card, when, "REWARD", request_hash("reward", guest, str(item.id), str(where)), by=by
        )
        tx = self._tx(
            card,
            operation["id"],
            TxType.REDEMPTION,
            -item.points_price,
            when,
            by=by,
            where=where,
            reason=item.name,
            reward_item_id=item.id,
        )
        self._debit(card, tx)
        left = self.stock[item.id]
        if left is not None:
            self.stock[item.id] = left - 1
        answer = {
            "operation_id": str(operation["id"]),
            "card_id": str(card.row["id"]),
            "reward": {"id": str(item.id), "name": item.name, "points_price": item.points_price},
            "transactions": [_tx_out(PointTransaction(**tx))],
            "balance": card.row["balance"],
        }
        operation["response"] = RewardRedeemed.model_validate(answer).model_dump(mode="json")

    def manual(self, card: _Card, when: datetime, where: uuid.UUID, by: Principal) -> None:
        """A manual credit small enough to need no approval (`operations._manual`)."""
        points = min(self.rng.choice([100, 200, 300, 500]), self.system.manual_approval_threshold)
        reason = self.rng.choice(MANUAL_REASONS)
        request = CashierRequest(type="MANUAL", restaurant_id=where, points=points, reason=reason)
        operation = self._cashier_operation(card, when, by, request)
        tx = self._tx(
            card, operation["id"], TxType.MANUAL, points, when, by=by, where=where, reason=reason
        )
        self._credit(card, tx)
        card.row["last_activity_at"] = when
        self._answer(
            card,
            operation,
            {
                "status": "COMPLETED",
                "transactions": [_tx_out(PointTransaction(**tx))],
                "accrued": points,
                "redeemed": 0,
                "discount": 0,
                "unrecovered_points": 0,
            },
            None,
        )

    def birthday(self, card: _Card, when: datetime, year: int) -> None:
        """The level's birthday bonus (`ledger.daily._credit_birthday`), keyed as the daily
        job keys it, so its run after the load does not pay today's twice."""
        bonus = card.level.birthday_bonus if card.level else 0
        if not bonus:
            return
        card_id = str(card.row["id"])
        operation = self._operation(
            card,
            when,
            "BIRTHDAY",
            request_hash("birthday", card_id, year),
            by=None,
            business_key=f"birthday:{card_id}:{year}",
        )
        tx = self._tx(
            card,
            operation["id"],
            TxType.BIRTHDAY,
            bonus,
            when,
            by=None,
            level=card.level,
            reason=f"birthday {year}",
        )
        self._credit(card, tx)
        operation["response"] = {"transaction_id": str(tx["id"]), "amount": bonus}


@dataclass(frozen=True)
class _Person:
    phone: str
    phone_hash: str
    gender: Gender
    first_name: str
    last_name: str
    birth_date: date


def _people(rng: random.Random, count: int) -> list[_Person]:
    taken: set[str] = set()
    people: list[_Person] = []
    while len(people) < count:
        raw = f"+79{rng.choice(['16', '25', '26', '03', '85'])}{rng.randint(0, 9_999_999):07d}"
        if raw in taken:
            continue
        taken.add(raw)
        phone = normalize_phone(raw)
        gender = rng.choice([Gender.FEMALE, Gender.MALE])
        people.append(
            _Person(
                phone,
                phone_index(phone),
                gender,
                rng.choice(FIRST[gender]),
                rng.choice(LAST[gender]),
                date(rng.randint(1960, 2005), rng.randint(1, 12), rng.randint(1, 28)),
            )
        )
    return people


class _Player:
    """Plans one guest's year (visits, and what happens at them) and plays it on the book."""

    def __init__(
        self, book: _Book, hands: Hands, restaurants: list[Restaurant], rng: random.Random
    ) -> None:
        self.book, self.hands, self.restaurants, self.rng = book, hands, restaurants, rng
        self.zones = {r.id: ZoneInfo(r.timezone) for r in restaurants}
        self.order = itertools.count()  # ties in time keep the order events were planned in

    def _target(self, index: int) -> int:
        """The position of the level this guest aims at: the first guests one of each,
        highest first, then each level half as likely as the one below it."""
        count = len(self.book.levels)
        if index < count:
            return count - 1 - index
        return self.rng.choices(range(count), weights=[2 ** (count - k) for k in range(count)])[0]

    def _spend(self, position: int) -> int:
        """Kopecks of checks over the year, inside the level's band (the lowest level's
        guests mostly spend little, and some never come back after joining)."""
        levels = self.book.levels
        if position == 0:
            return int(levels[1].min_spent * 0.7 * self.rng.random() ** 2)
        low = levels[position].min_spent
        high = levels[position + 1].min_spent if position + 1 < len(levels) else low * 3 // 2
        return int(self.rng.uniform(low * 1.1, high * 0.9))

    def _moment(self, where: uuid.UUID, days_ago: float) -> datetime:
        """A moment of opening hours `days_ago` days back, local to the restaurant."""
        now, zone = self.book.now, self.zones[where]
        day = (now - timedelta(days=days_ago)).astimezone(zone).date()
        local = time(self.rng.randint(11, 22), self.rng.randint(0, 59), self.rng.randint(0, 59))
        moment = datetime.combine(day, local, zone)
        return moment - timedelta(days=1) if moment > now else moment

    def _push(self, events: list[_Event], when: datetime, kind: str, what: Any) -> None:
        if when <= self.book.now:
            heapq.heappush(events, (when, next(self.order), kind, what))

    def play(self, index: int, user_id: uuid.UUID, code: str, person: _Person) -> _Card:
        book, rng, now = self.book, self.rng, self.book.now
        position = self._target(index)
        spend = self._spend(position)
        visits = round(spend / (CHECK_RUBLES[book.system.type] * 100 * (1 + position)))
        home = rng.choices(self.restaurants, weights=range(len(self.restaurants), 0, -1))[0]
        span = rng.uniform(240 if position else 20, 365)  # days: regulars came all year
        places = sorted(
            (self._moment(where, rng.uniform(0, span)), where)
            for where in (
                home.id if rng.random() < 0.8 else rng.choice(self.restaurants).id
                for _ in range(visits)
            )
        )
        weights = [rng.lognormvariate(0, 0.5) for _ in range(visits)]
        total = sum(weights)
        amounts = [max(10_000, int(spend * w / total)) for w in weights]
        source = rng.choices(
            [RegistrationSource.POS, RegistrationSource.TELEGRAM, RegistrationSource.LINK],
            weights=[7, 2, 1],
        )[0]
        if places:
            lead = timedelta(minutes=1) if source is RegistrationSource.POS else timedelta(days=3)
            joined = places[0][0] - lead * rng.random()
        else:
            joined = now - timedelta(days=rng.uniform(0, 365))
        first = level_for(book.levels, 0)
        card = _Card(
            {
                "id": uuid7(),
                "tenant_id": book.tenant.id,
                "user_id": user_id,
                "loyalty_system_id": book.system.id,
                "restaurant_id": None,  # the demo's programmes are UNIFIED: one card each
                "code": code,
                "status": CardStatus.ACTIVE,
                "registration_source": source,
                "level_id": first.id if first else None,
                "balance": 0,
                "pending_balance": 0,
                "lifetime_spent": 0,
                "total_visits": 0,
                "last_visit_at": None,
                "last_activity_at": None,
                "created_at": joined,
            },
            first,
            book.levels[position],
        )
        events: list[_Event] = []
        for n, ((when, where), amount) in enumerate(zip(places, amounts, strict=True)):
            self._push(events, when, "visit", (where, amount, n == visits - 1))
        zone = ZoneInfo(book.tenant.timezone)
        for year in (now.year - 1, now.year):
            birthday = datetime.combine(person.birth_date.replace(year=year), time(), zone)
            if joined < birthday:
                self._push(events, birthday, "birthday", year)
        while events:
            when, _, kind, what = heapq.heappop(events)
            book.settle(card, when)
            if kind == "visit":
                self._visit(card, when, *what, events=events)
            elif kind == "birthday":
                book.birthday(card, when, what)
            elif kind == "refund":
                book.refund(card, when, what)
            elif kind == "reward":
                book.reward(card, when, *what)
            else:
                book.manual(card, when, *what)
        book.settle(card, now)
        return card

    def _visit(
        self,
        card: _Card,
        when: datetime,
        where: uuid.UUID,
        amount: int,
        last: bool,
        *,
        events: list[_Event],
    ) -> None:
        """A check, and what may follow it: a refund, a reward bought, a manual credit."""
        book, rng = self.book, self.rng
        till = self.hands.tills.get(where)
        by = till if till and rng.random() < 0.6 else self.hands.cashiers[where]
        points = 0
        if book.system.type is ProgramType.POINTS and rng.random() < 0.35:
            allowed = max_redeemable(book.system, card.row["balance"], amount)
            points = int(allowed * rng.uniform(0.5, 1)) if allowed >= 50 else 0
        if last and card.target:  # the guest's spend reaches their level, whatever came before
            short = card.target.min_spent - card.row["lifetime_spent"] + 10_000
            off = Decimal(0)
            if book.system.type is ProgramType.DISCOUNT:
                off = discount_percent(book.system, card.level)
            amount = max(amount, int((short + points * KOPECKS_PER_POINT) * 100 / (100 - off)))
        check = book.sale(card, when, where, by, amount, points)
        if rng.random() < 0.02:
            self._push(events, when + timedelta(hours=rng.uniform(1, 72)), "refund", check)
        if book.rewards and rng.random() < 0.08:
            self._push(events, when + timedelta(minutes=rng.uniform(2, 20)), "reward", (where, by))
        if rng.random() < 0.01:
            manager = self.hands.manager
            hand = manager if manager.can_see_restaurant(where) else self.hands.cashiers[where]
            self._push(
                events, when + timedelta(minutes=rng.uniform(5, 60)), "manual", (where, hand)
            )


async def populate(
    session: AsyncSession,
    tenant: Tenant,
    system: LoyaltySystem,
    restaurants: list[Restaurant],
    hands: Hands,
    rewards: list[RedemptionItem],
    count: int,
    seed: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """`count` guests with a year of history up to `now`, written in the session's (the
    tenant's) transaction; returns them as the demo's JSON lists them."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    levels = await levels_of(session, system.id)
    book = _Book(tenant, system, levels, rewards, rng, now, hands)
    player = _Player(book, hands, restaurants, rng)
    people = _people(rng, count)
    # A person may already be a guest of another network: one account, a card in each.
    found = await session.execute(
        select(User.phone_hash, User.id).where(User.phone_hash.in_([p.phone_hash for p in people]))
    )
    known = dict(found.all())
    codes = rng.sample(range(1_000_000), count)
    cards = []
    for index, (person, code) in enumerate(zip(people, codes, strict=True)):
        user_id = known.get(person.phone_hash) or uuid7()
        card = player.play(index, user_id, f"{code:06d}", person)
        joined = card.row["created_at"]
        if person.phone_hash not in known:
            book.rows[User].append(
                {
                    "id": user_id,
                    "phone": person.phone,
                    "phone_hash": person.phone_hash,
                    "role": Role.GUEST,
                    "created_at": joined,
                }
            )
        book.rows[UserRole].append(
            {"tenant_id": tenant.id, "user_id": user_id, "role": Role.GUEST, "assigned_at": joined}
        )
        book.rows[GuestProfile].append(
            {
                "tenant_id": tenant.id,
                "user_id": user_id,
                "first_name": person.first_name,
                "last_name": person.last_name,
                "gender": person.gender,
                "birth_date": person.birth_date,
                "created_at": joined,
            }
        )
        book.rows[GuestCard].append(card.row)
        cards.append((person, card))
    for model in WRITE_ORDER:
        if book.rows[model]:
            # render_nulls: a None is sent as NULL, not left out, so every row has the same
            # columns and goes in one executemany (left out, each pattern of Nones is a
            # batch of its own: seven times slower).
            await session.execute(
                insert(model).execution_options(render_nulls=True), book.rows[model]
            )
    for item in rewards:  # objects of the session: their stock is written with it
        item.stock = book.stock[item.id]
    return [
        {
            "id": str(card.row["user_id"]),
            "phone": person.phone,
            "card_code": card.row["code"],
            "card_id": str(card.row["id"]),
            "level": card.level.name if card.level else None,
            "balance": card.row["balance"],
        }
        for person, card in cards
    ]
