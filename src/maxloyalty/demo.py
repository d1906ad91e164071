"""The demo network: what `maxloyalty demo` and the first `make run` load.

A platform owner; two tenants — a chain of three restaurants in three time zones on a
POINTS programme with one card per guest, and a café on DISCOUNT — with points of sale,
staff of every role, the five levels (each with guests), connected tills (R-Keeper, iiko,
custom), the chain's reward catalogue, a manual credit awaiting a manager's approval, and
about a thousand guests with a year of visits. Passwords are generated for each
installation (never committed), printed once and kept in `<data dir>/demo.json`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.config import Settings
from maxloyalty.demo_history import Hands, populate
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.integrations.pos import service as pos
from maxloyalty.integrations.pos.models import PosSystem
from maxloyalty.kit import context
from maxloyalty.kit.clock import utcnow
from maxloyalty.ledger.models import TxChannel
from maxloyalty.ledger.service import operations
from maxloyalty.ledger.service.daily import run_daily
from maxloyalty.ledger.service.operations import CashierRequest
from maxloyalty.loyalty.models import CardMode, LoyaltySystem, ProgramType
from maxloyalty.loyalty.service import LevelSpec, create_program, default_levels
from maxloyalty.network.models import Restaurant, Tenant
from maxloyalty.network.schemas import (
    PointOfSaleCreate,
    RestaurantCreate,
    StaffCreate,
    TenantCreate,
)
from maxloyalty.network.service import restaurants as service
from maxloyalty.network.service import staff
from maxloyalty.network.service.accounts import create_owner
from maxloyalty.rewards.models import RedemptionItem
from maxloyalty.rewards.schemas import RewardIn
from maxloyalty.runtime import Runtime

# Programme, number of guests and levels per tenant: the café's levels are the default
# ones at a tenth of the spend, as coffee checks are small.
PROGRAMS: dict[str, tuple[ProgramType, int, list[LevelSpec]]] = {
    "grill-house": (ProgramType.POINTS, 700, default_levels()),
    "zerno-coffee": (
        ProgramType.DISCOUNT,
        300,
        [replace(level, min_spent=level.min_spent // 10) for level in default_levels()],
    ),
}

# A placeholder, so the iiko integration is configured but nothing calls iikoCloud with it.
IIKO_DEMO_LOGIN = "demo-replace-with-your-apiLogin"
# Tills connected per tenant: (restaurant index, system, name, external id, credentials).
TILLS: dict[str, list[tuple[int, PosSystem, str, str | None, dict[str, str] | None]]] = {
    "grill-house": [
        (0, PosSystem.RKEEPER, "R-Keeper 7", "1", None),
        (1, PosSystem.CUSTOM, "Касса на планшете", None, None),
        (2, PosSystem.IIKO, "iiko", None, {"api_login": IIKO_DEMO_LOGIN}),
    ],
    "zerno-coffee": [(0, PosSystem.CUSTOM, "Касса", None, None)],
}
RKEEPER_LEVELS = {
    name: {"bonus": n, "discount": n} for n, name in enumerate(["BRONZE", "SILVER", "GOLD"], 1)
}

# The rewards per tenant: (name, points, stock, offered from / until in days from now,
# on offer, restaurant index or None for all). The café's programme gives discounts, so
# it has none.
REWARDS: dict[str, list[tuple[str, int, int | None, int | None, int | None, bool, int | None]]] = {
    "grill-house": [
        ("Капучино или чай", 150, None, None, None, True, None),
        ("Десерт дня", 300, None, None, None, True, None),
        ("Бургер «Гриль Хаус»", 650, None, None, None, True, None),
        ("Фирменная футболка", 1500, 200, None, None, True, None),
        ("Ужин от шефа на двоих", 5000, 8, None, None, True, 0),
        ("Напиток сезона", 250, None, -20, 30, True, None),
        ("Бизнес-ланч по акции", 400, None, -200, -110, True, None),
        ("Стейк рибай", 1800, None, None, None, False, None),
    ],
    "zerno-coffee": [],
}
# Why the cashier asked for the manual credit that awaits a manager's approval.
PENDING_REASON = "Компенсация: испорченный банкет"

# (tenant, [(restaurant, [points of sale])])
NETWORK: list[tuple[TenantCreate, list[tuple[RestaurantCreate, list[str]]]]] = [
    (
        TenantCreate(name="Гриль Хаус", slug="grill-house", timezone="Europe/Moscow"),
        [
            (
                RestaurantCreate(
                    name="Гриль Хаус — Тверская",
                    timezone="Europe/Moscow",
                    city="Москва",
                    address="ул. Тверская, 12",
                ),
                ["Касса 1", "Касса 2", "Бар"],
            ),
            (
                RestaurantCreate(
                    name="Гриль Хаус — Невский",
                    timezone="Europe/Moscow",
                    city="Санкт-Петербург",
                    address="Невский пр., 48",
                ),
                ["Касса 1", "Касса 2"],
            ),
            (
                RestaurantCreate(
                    name="Гриль Хаус — Екатеринбург",
                    timezone="Asia/Yekaterinburg",
                    city="Екатеринбург",
                    address="ул. Вайнера, 9",
                ),
                ["Касса 1"],
            ),
        ],
    ),
    (
        TenantCreate(name="Кофейня Зерно", slug="zerno-coffee", timezone="Asia/Novosibirsk"),
        [
            (
                RestaurantCreate(
                    name="Зерно на Красном",
                    timezone="Asia/Novosibirsk",
                    city="Новосибирск",
                    address="Красный пр., 25",
                ),
                ["Касса"],
            ),
        ],
    ),
]


@dataclass
class DemoSummary:
    created: bool
    message: str
    data: dict[str, Any] = field(default_factory=dict)


def _password() -> str:
    return secrets.token_urlsafe(12)


def _staff_plan(slug: str, restaurants: list[dict[str, Any]]) -> list[tuple[str, Role, list[str]]]:
    """(email, role, restaurant ids): an admin, a manager of the first two restaurants,
    and a cashier for every restaurant."""
    ids = [r["id"] for r in restaurants]
    plan = [
        (f"admin@{slug}.demo", Role.RESTAURANT_ADMIN, []),
        (f"manager@{slug}.demo", Role.MANAGER, ids[:2]),
    ]
    plan += [(f"cashier{i}@{slug}.demo", Role.CASHIER, [rid]) for i, rid in enumerate(ids, 1)]
    return plan


def _rewards(
    slug: str, tenant_id: uuid.UUID, restaurants: list[Restaurant], now: datetime
) -> list[RedemptionItem]:
    def day(offset: int | None) -> datetime | None:
        return None if offset is None else now + timedelta(days=offset)

    items = []
    for name, price, stock, since, until, active, where in REWARDS[slug]:
        body = RewardIn(
            name=name,
            points_price=price,
            stock=stock,
            active_from=day(since),
            active_to=day(until),
            is_active=active,
            restaurant_ids=[] if where is None else [restaurants[where].id],
        )
        # In the catalogue since before the history starts.
        items.append(
            RedemptionItem(
                tenant_id=tenant_id, created_at=now - timedelta(days=366), **body.model_dump()
            )
        )
    return items


async def _pending_approval(
    session: AsyncSession, system: LoyaltySystem, cashier: Principal, guest: dict[str, Any]
) -> dict[str, Any]:
    """A cashier's manual credit over the programme's threshold, through the same service
    as the API: it stays PENDING until a manager approves or rejects it."""
    points = system.manual_approval_threshold * 3 // 2
    restaurant_id = next(iter(cashier.restaurant_ids))
    request = CashierRequest(
        type="MANUAL", restaurant_id=restaurant_id, points=points, reason=PENDING_REASON
    )
    who = context.actor.set(cashier.actor)  # the audit log names the cashier
    try:
        ctx = await operations.open_context(session, cashier, restaurant_id, utcnow())
        posted = await operations.execute(ctx, uuid.UUID(guest["id"]), request, uuid.uuid4().hex)
        answer = posted.dump()
    finally:
        context.actor.reset(who)
    assert answer["status"] == "PENDING_APPROVAL"
    return {
        "transaction_id": answer["transactions"][0]["id"],
        "guest_id": guest["id"],
        "card_code": guest["card_code"],
        "points": points,
        "restaurant_id": str(restaurant_id),
        "reason": PENDING_REASON,
    }


async def _hire(
    session: AsyncSession, tenant: Tenant, restaurants: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[uuid.UUID, Principal], Principal]:
    """The staff with their logins; each restaurant's cashier and the manager, to post the
    history as."""
    out: list[dict[str, Any]] = []
    cashiers: dict[uuid.UUID, Principal] = {}
    manager = None
    for email, role, restaurant_ids in _staff_plan(tenant.slug, restaurants):
        password = _password()
        data = StaffCreate.model_validate(
            {"email": email, "password": password, "role": role, "restaurant_ids": restaurant_ids}
        )
        member, _ = await staff.create_staff(session, tenant.id, data)
        scope = frozenset(uuid.UUID(r) for r in restaurant_ids)
        principal = Principal(member.id, role, tenant.id, scope)
        if role is Role.CASHIER:
            cashiers[next(iter(scope))] = principal
        elif role is Role.MANAGER:
            manager = principal
        out.append(
            {
                "email": email,
                "password": password,
                "role": role.value,
                "restaurant_ids": restaurant_ids,
            }
        )
    assert manager is not None
    return out, cashiers, manager


async def _connect_tills(
    session: AsyncSession, runtime: Runtime, tenant: Tenant, restaurants: list[Restaurant]
) -> tuple[list[dict[str, Any]], dict[uuid.UUID, Principal], dict[uuid.UUID, TxChannel]]:
    """The tills with their keys; who each one posts as, by restaurant; the channel of each."""
    out: list[dict[str, Any]] = []
    principals: dict[uuid.UUID, Principal] = {}
    channels: dict[uuid.UUID, TxChannel] = {}
    for index, system, name, external_id, credentials in TILLS[tenant.slug]:
        issued = await pos.create(
            session,
            runtime.api_key_key,
            tenant_id=tenant.id,
            restaurant_id=restaurants[index].id,
            system=system,
            name=name,
            credentials=credentials,
            external_id=external_id,
            settings={"levels": RKEEPER_LEVELS} if system is PosSystem.RKEEPER else {},
            hold_ttl_seconds=900,
            require_signature=False,
            created_by=None,
        )
        principals[restaurants[index].id] = pos.principal_of(issued.integration)
        channels[issued.integration.id] = pos.CHANNELS[system]
        out.append(
            {
                "id": str(issued.integration.id),
                "system": system.value,
                "restaurant": restaurants[index].name,
                "api_key": issued.key.key,
                "webhook_token": issued.webhook_token,
            }
        )
    return out, principals, channels


async def _load_tenant(
    runtime: Runtime, tenant_data: Any, restaurant_plan: Any, guests: int | None
) -> dict[str, Any]:
    async with runtime.db.platform_session() as platform:
        tenant = await service.create_tenant(platform, tenant_data)
        await platform.commit()
    program_type, guest_count, levels = PROGRAMS[tenant.slug]
    now = utcnow()
    # The whole network in one transaction of the tenant's, so a failure leaves none of it.
    async with runtime.db.transaction(tenant.id) as session:
        system = await create_program(
            session,
            tenant.id,
            type=program_type,
            mode=CardMode.UNIFIED,
            levels=levels,
            pending_days=0,
        )
        restaurants: list[Restaurant] = []
        for restaurant_data, pos_names in restaurant_plan:
            restaurant = await service.create_restaurant(session, tenant.id, restaurant_data)
            restaurants.append(restaurant)
            for name in pos_names:
                await service.create_point_of_sale(
                    session, restaurant, PointOfSaleCreate(name=name)
                )
        restaurants_out = [{"id": str(r.id), "name": r.name} for r in restaurants]
        staff_out, cashiers, manager = await _hire(session, tenant, restaurants_out)
        tills, till_principals, channels = await _connect_tills(
            session, runtime, tenant, restaurants
        )
        rewards = _rewards(tenant.slug, tenant.id, restaurants, now)
        session.add_all(rewards)
        await session.flush()
        guests_out = await populate(
            session,
            tenant,
            system,
            restaurants,
            Hands(cashiers, till_principals, manager, channels),
            rewards,
            guest_count if guests is None else guests,
            tenant.slug,
            now,
        )
        pending = []
        if program_type is ProgramType.POINTS and guests_out:
            cashier = cashiers[restaurants[0].id]  # at a restaurant the manager looks after
            pending.append(await _pending_approval(session, system, cashier, guests_out[-1]))
    return {
        "id": str(tenant.id),
        "name": tenant.name,
        "slug": tenant.slug,
        "restaurants": restaurants_out,
        "staff": staff_out,
        "tills": tills,
        "rewards": [
            {
                "id": str(item.id),
                "name": item.name,
                "points_price": item.points_price,
                "stock": item.stock,
                "is_active": item.is_active,
            }
            for item in rewards
        ],
        "pending_approvals": pending,
        "guests": guests_out,
    }


async def _load(runtime: Runtime, guests: int | None = None) -> DemoSummary:
    """Build the demo (`guests` overrides each tenant's number of guests, for tests)."""
    slugs = [tenant.slug for tenant, _ in NETWORK]
    async with runtime.db.platform_session() as platform:
        existing = list(await platform.scalars(select(Tenant).where(Tenant.slug.in_(slugs))))
    saved = runtime.settings.data_dir / "demo.json"
    if existing:
        data = json.loads(saved.read_text()) if saved.exists() else {}
        return DemoSummary(False, "The demo network is already loaded; nothing to do.", data)

    owner = {"email": "owner@maxloyalty.demo", "password": _password()}
    await create_owner(runtime, email=owner["email"], password=owner["password"], phone=None)
    async with runtime.db.transaction() as session:
        # Months of the year back that a database migrated a while ago may lack.
        await session.execute(text("SELECT maxloyalty_ensure_partitions(0, 13)"))
    tenants = [await _load_tenant(runtime, t, r, guests) for t, r in NETWORK]
    await run_daily(runtime.db)  # what the hourly job finds now: points expiring soon
    data = {"owner": owner, "tenants": tenants}
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.touch(mode=0o600)
    saved.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    restaurants = sum(len(t["restaurants"]) for t in tenants)
    guest_total = sum(len(t["guests"]) for t in tenants)
    return DemoSummary(
        True,
        f"Demo network loaded: {len(tenants)} tenants, {restaurants} restaurants, "
        f"{guest_total} guests with a year of visits (logins saved in {saved}).",
        data,
    )


def _guests_to_try(guests: list[dict[str, Any]], count: int = 3) -> list[dict[str, Any]]:
    """A guest of each level there is, highest first, topped up by the richest others."""
    richest = sorted(guests, key=lambda g: -int(g.get("balance", 0)))
    picked: list[dict[str, Any]] = []
    for guest in richest:
        if guest.get("level") not in {g.get("level") for g in picked}:
            picked.append(guest)
    picked += [g for g in richest if g not in picked]
    return picked[:count]


def _curl(base_url: str, path: str, key: str, body: dict[str, Any], extra: str = "") -> str:
    return (
        f"curl -s {base_url}{path} -H 'Authorization: Bearer {key}'{extra}"
        f" -H 'Content-Type: application/json' -d '{json.dumps(body, ensure_ascii=False)}'"
    )


def start_block(data: dict[str, Any], base_url: str) -> str:
    """What a person needs to try the demo: where, who, which ids, and two calls to paste."""
    lines = [
        "MaxLoyalty demo",
        f"  API docs   {base_url}/api/docs   (ReDoc {base_url}/api/redoc)",
        f"  cashier    {base_url}/cashier   (sign in as a CASHIER or MANAGER below)",
        "Sign in (POST /api/auth/login):",
        f"  OWNER            {data['owner']['email']} / {data['owner']['password']}",
    ]
    tries: list[str] = []
    for tenant in data["tenants"]:
        guests = _guests_to_try(tenant["guests"])
        lines.append(f"{tenant['name']}  tenant {tenant['id']}")
        lines += [f"  restaurant {r['id']}  {r['name']}" for r in tenant["restaurants"]]
        lines += [f"  {s['role']:<16} {s['email']} / {s['password']}" for s in tenant["staff"]]
        lines += [
            f"  guest code {g['card_code']}  {g.get('level') or '-':<9} {g['balance']} points"
            for g in guests
        ]
        if tenant.get("slug") and guests and guests[0].get("phone"):
            lines.append(
                f"  cabinet    {base_url}/app/{tenant['slug']}   (phone {guests[0]['phone']};"
                " the SMS code is printed in this console)"
            )
        # .get: a demo.json saved before these existed has neither.
        if tenant.get("rewards"):
            lines.append(
                f"  rewards    {len(tenant['rewards'])} in the catalogue (GET /api/rewards)"
            )
        lines += [
            f"  awaiting approval  {p['points']:+} points on card {p['card_code']}:"
            f" POST /api/transactions/{p['transaction_id']}/approve (as the manager)"
            for p in tenant.get("pending_approvals", [])
        ]
        for till in tenant["tills"]:
            lines.append(f"  till {till['system']:<8} {till['restaurant']}: {till['api_key']}")
            if not tries and till["system"] == "CUSTOM" and guests and "card_id" in guests[0]:
                key, check = till["api_key"], 150000
                tries = [
                    f"Try the generic POS API as the till at {till['restaurant']}:",
                    "  "
                    + _curl(
                        base_url,
                        "/api/pos/v1/identify",
                        key,
                        {"code": guests[0]["card_code"], "check_amount": check},
                    ),
                    "  ORDER=demo-$(date +%s); "
                    + _curl(
                        base_url,
                        "/api/pos/v1/orders/$ORDER/commit",
                        key,
                        {
                            "card_id": guests[0]["card_id"],
                            "amount": check,
                            "payments": [{"type": "card", "amount": check}],
                        },
                        ' -H "Idempotency-Key: $ORDER"',
                    ),
                ]
    return "\n".join(lines + tries)


def saved_demo(settings: Settings) -> dict[str, Any] | None:
    """The demo's logins and ids as the first start kept them, if it ran here."""
    saved = settings.data_dir / "demo.json"
    return json.loads(saved.read_text()) if saved.exists() else None


def load_demo(settings: Settings) -> DemoSummary:
    async def main() -> DemoSummary:
        runtime = Runtime.start(settings)
        try:
            return await _load(runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())
