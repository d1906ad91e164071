"""The demo network: what `maxloyalty demo` and the first `make run` load.

A platform owner; two tenants — a chain of three restaurants in three time zones on a
POINTS programme with one card per guest, and a café on DISCOUNT — with points of sale,
staff of every role, the five default levels, and about a thousand guests with a year of
visits. Passwords are generated for each installation (never committed), printed once and
kept in `<data dir>/demo.json`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from maxloyalty.config import Settings
from maxloyalty.demo_history import populate
from maxloyalty.identity import staff
from maxloyalty.identity.admin import create_owner
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.schemas import StaffCreate
from maxloyalty.integrations.pos import service as pos
from maxloyalty.integrations.pos.models import PosSystem
from maxloyalty.loyalty.models import CardMode, ProgramType
from maxloyalty.loyalty.service import create_program
from maxloyalty.network import service
from maxloyalty.network.models import Tenant
from maxloyalty.network.schemas import PointOfSaleCreate, RestaurantCreate, TenantCreate
from maxloyalty.runtime import Runtime

# Programme and number of guests per tenant.
PROGRAMS = {"grill-house": (ProgramType.POINTS, 700), "zerno-coffee": (ProgramType.DISCOUNT, 300)}

# Tills connected per tenant: (restaurant index, system, name, external id).
TILLS: dict[str, list[tuple[int, PosSystem, str, str | None]]] = {
    "grill-house": [
        (0, PosSystem.RKEEPER, "R-Keeper 7", "1"),
        (1, PosSystem.CUSTOM, "Касса на планшете", None),
        (2, PosSystem.IIKO, "iiko", None),
    ],
    "zerno-coffee": [(0, PosSystem.CUSTOM, "Касса", None)],
}
RKEEPER_LEVELS = {
    name: {"bonus": n, "discount": n} for n, name in enumerate(["BRONZE", "SILVER", "GOLD"], 1)
}

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


async def _load_tenant(
    runtime: Runtime, tenant_data: Any, restaurants: Any, guests: int | None
) -> dict[str, Any]:
    async with runtime.db.platform_session() as platform:
        tenant = await service.create_tenant(platform, tenant_data)
        await platform.commit()
    restaurants_out: list[dict[str, Any]] = []
    staff_out: list[dict[str, Any]] = []
    cashiers: list[Principal] = []
    program_type, guest_count = PROGRAMS[tenant.slug]
    async with runtime.db.transaction(tenant.id) as session:
        system = await create_program(
            session, tenant.id, type=program_type, mode=CardMode.UNIFIED, pending_days=0
        )
        for restaurant_data, pos_names in restaurants:
            restaurant = await service.create_restaurant(session, tenant.id, restaurant_data)
            restaurants_out.append({"id": str(restaurant.id), "name": restaurant.name})
            for name in pos_names:
                await service.create_point_of_sale(
                    session, restaurant, PointOfSaleCreate(name=name)
                )
        for email, role, restaurant_ids in _staff_plan(tenant.slug, restaurants_out):
            password = _password()
            data = StaffCreate.model_validate(
                {
                    "email": email,
                    "password": password,
                    "role": role,
                    "restaurant_ids": restaurant_ids,
                }
            )
            member, _ = await staff.create_staff(session, tenant.id, data)
            if role is Role.CASHIER:
                cashiers.append(
                    Principal(
                        member.id,
                        role,
                        tenant.id,
                        frozenset(uuid.UUID(r) for r in restaurant_ids),
                    )
                )
            staff_out.append(
                {
                    "email": email,
                    "password": password,
                    "role": role.value,
                    "restaurant_ids": restaurant_ids,
                }
            )
        tills: list[dict[str, Any]] = []
        for index, system_name, name, external_id in TILLS[tenant.slug]:
            issued = await pos.create(
                session,
                runtime.api_key_key,
                tenant_id=tenant.id,
                restaurant_id=uuid.UUID(restaurants_out[index]["id"]),
                system=system_name,
                name=name,
                credentials=None,
                external_id=external_id,
                settings={"levels": RKEEPER_LEVELS} if system_name is PosSystem.RKEEPER else {},
                hold_ttl_seconds=900,
                require_signature=False,
                created_by=None,
            )
            tills.append(
                {
                    "system": system_name.value,
                    "restaurant": restaurants_out[index]["name"],
                    "api_key": issued.key.key,
                    "webhook_token": issued.webhook_token,
                }
            )
    return {
        "id": str(tenant.id),
        "name": tenant.name,
        "restaurants": restaurants_out,
        "staff": staff_out,
        "tills": tills,
        "guests": await populate(
            runtime, system, cashiers, guest_count if guests is None else guests, tenant.slug
        ),
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
    tenants = [await _load_tenant(runtime, t, r, guests) for t, r in NETWORK]
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
