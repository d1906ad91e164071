"""Guests and a year of their visits for the demo network, posted through the same
services a till uses (back-dated), so every number in the demo is a real ledger entry."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from maxloyalty.guests.models import Gender, GuestCard, GuestProfile, RegistrationSource
from maxloyalty.guests.service import find_or_create_user_by_phone, join_network
from maxloyalty.identity.principal import Principal
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import AppError
from maxloyalty.ledger import operations
from maxloyalty.ledger.operations import CashierRequest
from maxloyalty.ledger.tasks import run_daily
from maxloyalty.loyalty.models import LoyaltyLevel, LoyaltySystem, ProgramType
from maxloyalty.runtime import Runtime

FIRST = {
    Gender.FEMALE: ["Анна", "Мария", "Елена", "Ольга", "Наталья", "Ирина", "Дарья", "Алина"],
    Gender.MALE: ["Иван", "Дмитрий", "Алексей", "Сергей", "Андрей", "Михаил", "Павел", "Артём"],
}
LAST = {
    Gender.FEMALE: ["Иванова", "Смирнова", "Кузнецова", "Попова", "Соколова", "Лебедева"],
    Gender.MALE: ["Иванов", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев"],
}
CONCURRENCY = 8


def _phone(rng: random.Random, taken: set[str]) -> str:
    while True:
        phone = f"+79{rng.choice(['16', '25', '26', '03', '85'])}{rng.randint(0, 9_999_999):07d}"
        if phone not in taken:
            taken.add(phone)
            return phone


async def _guests(
    runtime: Runtime, system: LoyaltySystem, count: int, rng: random.Random
) -> list[tuple[uuid.UUID, str, str]]:
    """(guest id, phone, card code) for `count` new guests with filled-in profiles."""
    taken: set[str] = set()
    out = []
    for start in range(0, count, 100):
        async with runtime.db.transaction(system.tenant_id) as session:
            for _ in range(min(100, count - start)):
                phone = _phone(rng, taken)
                user = await find_or_create_user_by_phone(session, phone)
                card = await join_network(session, system, user, RegistrationSource.POS)
                gender = rng.choice([Gender.FEMALE, Gender.MALE])
                profile = await session.scalar(
                    select(GuestProfile).where(GuestProfile.user_id == user.id)
                )
                assert profile is not None
                profile.first_name = rng.choice(FIRST[gender])
                profile.last_name = rng.choice(LAST[gender])
                profile.gender = gender
                profile.birth_date = date(
                    rng.randint(1960, 2005), rng.randint(1, 12), rng.randint(1, 28)
                )
                out.append((user.id, phone, card.code))
    return out


def _check_amount(rng: random.Random, system: LoyaltySystem) -> int:
    rubles = rng.lognormvariate(7.2 if system.type is ProgramType.POINTS else 5.8, 0.6)
    return max(100, int(rubles * 100))


async def _visits(
    runtime: Runtime,
    guest_id: uuid.UUID,
    cashiers: list[Principal],
    rng: random.Random,
    now: datetime,
    system: LoyaltySystem,
) -> None:
    visits = sorted(
        now - timedelta(days=rng.uniform(0, 365)) for _ in range(int(rng.expovariate(1 / 6)))
    )
    checks: list[tuple[str, uuid.UUID, Principal]] = []
    for when in visits:
        cashier = rng.choice(cashiers)
        restaurant = next(iter(cashier.restaurant_ids))
        request: dict[str, Any] = {
            "type": "SALE",
            "restaurant_id": str(restaurant),
            "amount": _check_amount(rng, system),
            "check_number": f"D{uuid.uuid4().hex[:10]}",
        }
        if system.type is ProgramType.POINTS and rng.random() < 0.25:
            request |= {"type": "REDEMPTION", "points": rng.randint(50, 400)}
        elif checks and rng.random() < 0.03:
            number, where, by = rng.choice(checks)
            request = {"type": "REFUND", "restaurant_id": str(where), "check_number": number}
            cashier = by
        try:
            async with runtime.db.transaction(system.tenant_id, cashier.subject) as session:
                ctx = await operations.open_context(
                    session, cashier, uuid.UUID(request["restaurant_id"]), when
                )
                await operations.execute(
                    ctx, guest_id, CashierRequest.model_validate(request), uuid.uuid4().hex
                )
        except AppError:
            continue  # not enough points for that redemption, a refunded check: as in life
        if request["type"] != "REFUND":
            checks.append((request["check_number"], restaurant, cashier))


async def populate(
    runtime: Runtime,
    system: LoyaltySystem,
    cashiers: list[Principal],
    count: int,
    seed: str,
) -> list[dict[str, Any]]:
    """Guests with a year of visits; returns them as the demo's JSON lists them."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    guests = await _guests(runtime, system, count, rng)
    now = utcnow()
    gate = asyncio.Semaphore(CONCURRENCY)
    seeds = [rng.random() for _ in guests]

    async def one(guest_id: uuid.UUID, guest_seed: float) -> None:
        async with gate:
            await _visits(runtime, guest_id, cashiers, random.Random(guest_seed), now, system)  # noqa: S311

    await asyncio.gather(*(one(g, s) for (g, _, _), s in zip(guests, seeds, strict=True)))
    await run_daily(runtime.db, now)  # what a year of the daily job would have expired
    async with runtime.db.transaction(system.tenant_id) as session:
        rows = await session.execute(
            select(GuestCard.user_id, GuestCard.id, GuestCard.balance, LoyaltyLevel.name).outerjoin(
                LoyaltyLevel, LoyaltyLevel.id == GuestCard.level_id
            )
        )
        cards = {row.user_id: row for row in rows}
    return [
        {
            "id": str(g),
            "phone": phone,
            "card_code": code,
            "card_id": str(cards[g].id),
            "level": cards[g].name,
            "balance": cards[g].balance,
        }
        for g, phone, code in guests
    ]
