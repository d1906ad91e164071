"""Every protected route × every role: anonymous → 401, another tenant → 404,
wrong role or restaurant → 403, right role → 2xx."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from maxloyalty.app import create_app
from maxloyalty.config import Settings
from maxloyalty.guests.models import RegistrationSource
from maxloyalty.guests.service.cards import join_network
from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import PASSWORD, make_program, make_restaurant, make_tenant

ADMIN, MANAGER, CASHIER = Role.RESTAURANT_ADMIN, Role.MANAGER, Role.CASHIER
STAFF = {ADMIN, MANAGER, CASHIER}
TILL = STAFF | {Role.SYSTEM}
ALL = [Role.OWNER, ADMIN, MANAGER, CASHIER, Role.GUEST, Role.SYSTEM]


@dataclass
class World:
    tenant: uuid.UUID
    other_tenant: uuid.UUID
    mine: uuid.UUID  # a restaurant the manager and cashier are assigned to
    unassigned: uuid.UUID
    staff_user: uuid.UUID
    api_key: uuid.UUID
    people: dict[Role, uuid.UUID]  # a real user per role, as token subjects
    program: uuid.UUID
    card: uuid.UUID
    card_code: str


@dataclass(frozen=True)
class Route:
    method: str
    path: Callable[[World], str]
    allowed: frozenset[Role]
    body: Callable[..., object] | None = None
    # Whether the path names a tenant's resource (another tenant must get 404) and a
    # restaurant (an unassigned manager must get 403).
    tenant_resource: bool = False
    restaurant: bool = False


def _unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


ROUTES = [
    Route("GET", lambda w: "/api/auth/me", frozenset(ALL)),
    Route("GET", lambda w: "/api/me/data", frozenset(STAFF | {Role.GUEST})),
    Route("GET", lambda w: "/api/me/profile", frozenset({Role.GUEST})),
    Route("GET", lambda w: "/api/restaurants", frozenset(STAFF)),
    Route(
        "POST",
        lambda w: "/api/restaurants",
        frozenset({ADMIN}),
        lambda w: {"name": _unique("R"), "timezone": "Europe/Moscow"},
    ),
    Route(
        "GET",
        lambda w: f"/api/restaurants/{w.mine}",
        frozenset(STAFF),
        tenant_resource=True,
        restaurant=True,
    ),
    Route(
        "PATCH",
        lambda w: f"/api/restaurants/{w.mine}",
        frozenset({ADMIN}),
        lambda w: {"city": "Казань"},
        tenant_resource=True,
    ),
    Route(
        "GET",
        lambda w: f"/api/restaurants/{w.mine}/points-of-sale",
        frozenset(STAFF),
        tenant_resource=True,
        restaurant=True,
    ),
    Route(
        "POST",
        lambda w: f"/api/restaurants/{w.mine}/points-of-sale",
        frozenset({ADMIN}),
        lambda w: {"name": _unique("Касса")},
        tenant_resource=True,
    ),
    Route("GET", lambda w: "/api/staff", frozenset({ADMIN})),
    Route(
        "POST",
        lambda w: "/api/staff",
        frozenset({ADMIN}),
        lambda w: {
            "email": f"{uuid.uuid4().hex[:10]}@example.com",
            "password": PASSWORD,
            "role": "RESTAURANT_ADMIN",
        },
    ),
    Route(
        "PATCH",
        lambda w: f"/api/staff/{w.staff_user}",
        frozenset({ADMIN}),
        lambda w: {"is_active": True},
        tenant_resource=True,
    ),
    Route(
        "GET",
        lambda w: f"/api/staff/{w.staff_user}/permissions",
        frozenset({ADMIN}),
        tenant_resource=True,
    ),
    Route("GET", lambda w: "/api/api-keys", frozenset({ADMIN})),
    Route("POST", lambda w: "/api/api-keys", frozenset({ADMIN}), lambda w: {"name": _unique("K")}),
    Route(
        "DELETE",
        lambda w: f"/api/api-keys/{w.api_key}",
        frozenset({ADMIN}),
        tenant_resource=True,
    ),
    Route("GET", lambda w: "/api/platform/tenants", frozenset({Role.OWNER})),
    Route("GET", lambda w: "/api/loyalty/programs", frozenset(STAFF)),
    Route("GET", lambda w: "/api/rewards", frozenset(TILL | {Role.GUEST})),
    Route("GET", lambda w: "/api/transactions", frozenset({ADMIN, MANAGER})),
    Route("GET", lambda w: "/api/webhooks/endpoints", frozenset({ADMIN})),
    Route("GET", lambda w: "/api/pos/integrations", frozenset({ADMIN, MANAGER})),
    Route(
        "POST",
        lambda w: "/api/pos/integrations",
        frozenset({ADMIN}),
        lambda w: {"restaurant_id": str(w.mine), "system": "CUSTOM", "name": _unique("Till")},
    ),
    Route(
        "POST",
        lambda w: "/api/webhooks/endpoints",
        frozenset({ADMIN}),
        lambda w: {"url": "http://127.0.0.1:9/hook"},
    ),
    Route(
        "POST",
        lambda w: "/api/rewards",
        frozenset({ADMIN}),
        lambda w: {"name": _unique("Десерт"), "points_price": 100},
    ),
    Route(
        "PATCH",
        lambda w: f"/api/loyalty/programs/{w.program}",
        frozenset({ADMIN}),
        lambda w: {"expiry_days": 180},
        tenant_resource=True,
    ),
    Route(
        "PUT",
        lambda w: f"/api/loyalty/programs/{w.program}/levels",
        frozenset({ADMIN}),
        lambda w: [
            {"name": "BRONZE", "min_spent": 0, "percentage": "5"},
            {"name": "SILVER", "min_spent": 3_000_000, "percentage": "10"},
        ],
        tenant_resource=True,
    ),
    Route(
        "POST",
        lambda w: f"/api/loyalty/programs/{w.program}/preview",
        frozenset({ADMIN}),
        tenant_resource=True,
    ),
    Route(
        "DELETE",
        lambda w: f"/api/loyalty/programs/{w.program}/logo",
        frozenset({ADMIN}),
        tenant_resource=True,
    ),
    Route(
        "POST",
        lambda w: "/api/cards/identify",
        frozenset(TILL),
        lambda w: {"restaurant_id": str(w.mine), "code": w.card_code},
        tenant_resource=True,
    ),
    Route(
        "POST",
        lambda w: "/api/guests",
        frozenset(TILL),
        lambda w: {"phone": f"+7926{uuid.uuid4().int % 10**7:07d}", "restaurant_id": str(w.mine)},
        tenant_resource=True,
    ),
    Route(
        "GET",
        lambda w: f"/api/restaurants/{w.mine}/guests",
        frozenset({ADMIN, MANAGER}),
        tenant_resource=True,
        restaurant=True,
    ),
    Route(
        "PATCH",
        lambda w: f"/api/cards/{w.card}",
        frozenset({ADMIN, MANAGER}),
        lambda w: {"status": "ACTIVE"},
        tenant_resource=True,
    ),
    Route(
        "GET",
        lambda w: f"/api/cards/{w.card}/qr.svg",
        frozenset(STAFF | {Role.GUEST}),
        tenant_resource=True,
    ),
    Route(
        "POST",
        lambda w: f"/api/guest/{w.people[Role.GUEST]}/transaction",
        frozenset(TILL),
        lambda w: {"type": "SALE", "restaurant_id": str(w.mine), "amount": 10_000},
        tenant_resource=True,
    ),
    Route(
        "GET",
        lambda w: f"/api/guest/{w.people[Role.GUEST]}/balance",
        frozenset(TILL | {Role.GUEST}),
        tenant_resource=True,
    ),
    Route(
        "GET",
        lambda w: f"/api/guest/{w.people[Role.GUEST]}/history",
        frozenset(TILL | {Role.GUEST}),
        tenant_resource=True,
    ),
    Route(
        "POST",
        lambda w: "/api/platform/tenants",
        frozenset({Role.OWNER}),
        lambda w: {"name": "Сеть", "slug": f"s-{uuid.uuid4().hex[:10]}"},
    ),
]


@pytest.fixture
async def world(runtime: Runtime, client: httpx.AsyncClient, auth: TokenFactory) -> World:
    tenant, other = await make_tenant(runtime), await make_tenant(runtime)
    mine = await make_restaurant(runtime, tenant)
    unassigned = await make_restaurant(runtime, tenant)
    people = {}
    async with runtime.db.transaction() as session:
        for role in ALL:
            person = User(role=role)
            session.add(person)
            await session.flush()
            people[role] = person.id
    admin = await auth(ADMIN, tenant.id, subject=people[ADMIN])
    staff = await client.post(
        "/api/staff",
        json={
            "email": "cashier@example.com",
            "password": PASSWORD,
            "role": "CASHIER",
            "restaurant_ids": [str(mine.id)],
        },
        headers=admin,
    )
    key = await client.post("/api/api-keys", json={"name": "till"}, headers=admin)
    program = await make_program(runtime, tenant)
    async with runtime.db.transaction(tenant.id) as session:
        guest = await session.get(User, people[Role.GUEST])
        assert guest is not None
        card = await join_network(session, program, guest, RegistrationSource.POS)
    return World(
        tenant=tenant.id,
        other_tenant=other.id,
        mine=mine.id,
        unassigned=unassigned.id,
        staff_user=uuid.UUID(staff.json()["id"]),
        api_key=uuid.UUID(key.json()["id"]),
        people=people,
        program=program.id,
        card=card.id,
        card_code=card.code,
    )


async def _token(
    auth: TokenFactory, role: Role, world: World, tenant: uuid.UUID | None = None
) -> dict[str, str]:
    subject = world.people[role]
    if role is Role.OWNER:
        return await auth(role, subject=subject)
    scope = (world.mine,) if role in {MANAGER, CASHIER} else ()
    return await auth(role, tenant or world.tenant, scope, subject=subject)


async def _call(
    client: httpx.AsyncClient,
    route: Route,
    world: World,
    headers: dict[str, str],
    path: str | None = None,
) -> httpx.Response:
    body = route.body(world) if route.body else None
    headers = headers | {"Idempotency-Key": uuid.uuid4().hex}
    return await client.request(route.method, path or route.path(world), json=body, headers=headers)


_Z = uuid.UUID(int=0)
# A world of zero ids, for test names and for matching route shapes.
ZERO = World(_Z, _Z, _Z, _Z, _Z, _Z, dict.fromkeys(ALL, _Z), _Z, _Z, "000000")


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path(ZERO)}")
async def test_route_matrix(
    client: httpx.AsyncClient, auth: TokenFactory, world: World, route: Route
) -> None:
    anonymous = await _call(client, route, world, {})
    assert anonymous.status_code == 401, anonymous.text

    for role in ALL:
        answer = await _call(client, route, world, await _token(auth, role, world))
        if role in route.allowed:
            assert answer.status_code < 300, (role, answer.text)
        else:
            assert answer.status_code == 403, (role, answer.text)

    if route.tenant_resource:
        outsider = next(r for r in sorted(route.allowed) if r is not Role.OWNER)
        answer = await _call(
            client, route, world, await _token(auth, outsider, world, world.other_tenant)
        )
        assert answer.status_code == 404, answer.text

    if route.restaurant:
        path = route.path(world).replace(str(world.mine), str(world.unassigned))
        for role in (MANAGER, CASHIER):
            answer = await _call(client, route, world, await _token(auth, role, world), path)
            assert answer.status_code == 403, (role, answer.text)


# Till calls need an integration's own key; admin actions on one integration need one.
POS_OWN_TESTS = [
    ("GET", "/api/pos/integrations/{integration_id}"),
    ("PATCH", "/api/pos/integrations/{integration_id}"),
    ("GET", "/api/pos/integrations/{integration_id}/events"),
    ("POST", "/api/pos/integrations/{integration_id}/events/{event_id}/replay"),
    ("POST", "/api/pos/integrations/{integration_id}/iiko/directory"),
    ("POST", "/api/pos/integrations/{integration_id}/iiko/webhook"),
    ("POST", "/api/pos/integrations/{integration_id}/rotate-secrets"),
    ("GET", "/api/pos/integrations/{integration_id}/syncs"),
    ("GET", "/api/pos/integrations/{integration_id}/transactions"),
    ("POST", "/api/pos/rkeeper/{call}"),
    ("POST", "/api/pos/v1/calculate"),
    ("POST", "/api/pos/v1/identify"),
    ("POST", "/api/pos/v1/orders/{order_id}/cancel"),
    ("POST", "/api/pos/v1/orders/{order_id}/commit"),
    ("POST", "/api/pos/v1/orders/{order_id}/hold"),
    ("POST", "/api/pos/v1/orders/{order_id}/refund"),
]


def test_every_api_route_is_in_the_matrix(settings: Settings) -> None:
    public = {
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/auth/register",
        "/api/auth/verify",
        "/api/auth/telegram",
        "/api/pos/iiko/webhook",  # iiko's own token, tested with the receiver
        "/api/telegram/{tenant_slug}/webhook",  # Telegram's secret token, tested with the bot
    }
    covered = {(r.method, r.path(ZERO).replace(str(_Z), "{}")) for r in ROUTES}
    missing = []
    for path, operations in create_app(settings).openapi()["paths"].items():
        if not path.startswith("/api/") or path in public:
            continue
        shape = re.sub(r"\{[^}]+\}", "{}", path)
        missing += [(m.upper(), path) for m in operations if (m.upper(), shape) not in covered]
    # Actions not in the matrix are covered by their own tests.
    assert sorted(missing) == sorted(
        [
            *POS_OWN_TESTS,
            ("DELETE", "/api/me/children/{child_id}"),
            ("DELETE", "/api/staff/{user_id}/permissions/{permission_id}"),
            ("DELETE", "/api/webhooks/endpoints/{endpoint_id}"),
            ("GET", "/api/webhooks/endpoints/{endpoint_id}/deliveries"),
            ("GET", "/api/webhooks/event-types"),
            ("PATCH", "/api/webhooks/endpoints/{endpoint_id}"),
            ("POST", "/api/webhooks/endpoints/{endpoint_id}/rotate-secret"),
            ("PATCH", "/api/me/profile"),
            ("PATCH", "/api/rewards/{item_id}"),
            ("POST", "/api/guest/{guest_id}/transfer"),
            ("POST", "/api/loyalty/programs"),
            # The image itself as the body: tests/loyalty/test_logo.py.
            ("PUT", "/api/loyalty/programs/{program_id}/logo"),
            ("POST", "/api/me/children"),
            ("POST", "/api/me/consents"),
            ("POST", "/api/me/erase"),
            ("POST", "/api/auth/password"),  # tests/identity/test_revocation.py
            ("POST", "/api/rewards/{item_id}/redeem"),
            ("POST", "/api/staff/{user_id}/block"),
            ("POST", "/api/staff/{user_id}/permissions"),
            ("POST", "/api/staff/{user_id}/sessions/revoke"),
            ("POST", "/api/transactions/{transaction_id}/approve"),
            ("POST", "/api/transactions/{transaction_id}/reject"),
            ("POST", "/api/webhooks/deliveries/{delivery_id}/redeliver"),
            # The card's own guest only: tests/guests/test_rotating_code.py.
            ("GET", "/api/cards/{card_id}/rotating-code"),
            # They talk to Telegram: tests/integrations/telegram/.
            ("GET", "/api/telegram/bot"),
            ("POST", "/api/telegram/bot"),
            ("DELETE", "/api/telegram/bot"),
        ]
    )
