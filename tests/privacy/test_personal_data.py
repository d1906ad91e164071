"""A person's copy of their data and its erasure (152-FZ), per network: one person is a guest
of two networks, each its own data operator."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import time_machine
from sqlalchemy import func, select

from maxloyalty.audit.models import ActivityLog
from maxloyalty.guests.models import CardStatus, GuestCard, GuestChild, GuestProfile
from maxloyalty.identity.models import Consent, User, UserRole
from maxloyalty.identity.principal import Role
from maxloyalty.kit.clock import utcnow
from maxloyalty.ledger.models import PointTransaction
from maxloyalty.ledger.service.verify import verify_tenant
from maxloyalty.network.models import Restaurant, Tenant
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import (
    PASSWORD,
    bearer,
    login,
    make_program,
    make_restaurant,
    make_staff,
    make_tenant,
)
from tests.guests.test_sign_in import E164, last_code, register, verify
from tests.test_app import assert_problem

PROFILE = {
    "first_name": "Вера",
    "last_name": "Сидорова",
    "middle_name": "Павловна",
    "gender": "FEMALE",
    "birth_date": "1991-07-04",
    "city": "Екатеринбург",
    "avatar_url": "https://example.com/vera.png",
    "telegram_username": "vera_s",
}
CLIENT_IP = "203.0.113.7"  # the test client's address


@dataclass
class Network:
    """A network the person joined by SMS, with a till's cashier."""

    tenant: Tenant
    restaurant: Restaurant
    cashier: dict[str, str]
    tokens: dict[str, str]
    client: httpx.AsyncClient

    @property
    def guest(self) -> dict[str, str]:
        return bearer(self.tokens)

    async def sale(self, person: uuid.UUID, amount: int, check: str) -> None:
        answer = await self.client.post(
            f"/api/guest/{person}/transaction",
            json={
                "type": "SALE",
                "restaurant_id": str(self.restaurant.id),
                "amount": amount,
                "check_number": check,
            },
            headers=self.cashier | {"Idempotency-Key": uuid.uuid4().hex},
        )
        assert answer.status_code == 201, answer.text

    async def erase(self, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.client.post("/api/me/erase", json=body, headers=self.guest)


async def _join(client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory) -> Network:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    await make_program(runtime, tenant)
    await runtime.limiter.reset()  # the resend cooldown is per phone
    assert (await register(client, tenant.id)).status_code == 202
    signed_in = await verify(client, tenant.id, last_code(runtime))
    assert signed_in.status_code == 200, signed_in.text
    async with runtime.db.transaction() as session:
        cashier = User(role=Role.CASHIER)
        session.add(cashier)
    return Network(
        tenant=tenant,
        restaurant=restaurant,
        cashier=await auth(Role.CASHIER, tenant.id, (restaurant.id,), subject=cashier.id),
        tokens=signed_in.json(),
        client=client,
    )


async def _person(network: Network) -> uuid.UUID:
    me = await network.client.get("/api/auth/me", headers=network.guest)
    return uuid.UUID(me.json()["subject"])


async def _fill(network: Network, person: uuid.UUID) -> None:
    """What a guest leaves in a network: profile, a child, a consent, two visits."""
    client, guest = network.client, network.guest
    assert (await client.patch("/api/me/profile", json=PROFILE, headers=guest)).status_code == 200
    child = {"name": "Миша", "birth_date": "2019-02-01"}
    assert (await client.post("/api/me/children", json=child, headers=guest)).status_code == 201
    consent = {"kind": "MARKETING", "granted": False}
    assert (await client.post("/api/me/consents", json=consent, headers=guest)).status_code == 201
    await network.sale(person, 150000, "A-1")
    await network.sale(person, 50000, "A-2")


@dataclass
class Stored:
    """What a network holds about the person, read as the app role sees it."""

    profile: GuestProfile
    children: int
    consents: list[Consent]
    roles: list[UserRole]
    cards: list[GuestCard]
    ledger: tuple[int, int]  # rows, sum of amounts
    erasures_logged: list[ActivityLog]


async def _stored(runtime: Runtime, network: Network, person: uuid.UUID) -> Stored:
    async with runtime.db.transaction(network.tenant.id) as session:
        profile = await session.scalar(select(GuestProfile).where(GuestProfile.user_id == person))
        assert profile is not None
        cards = list(await session.scalars(select(GuestCard).where(GuestCard.user_id == person)))
        rows, total = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(PointTransaction.amount), 0)).where(
                    PointTransaction.card_id.in_([c.id for c in cards])
                )
            )
        ).one()
        _, mismatches = await verify_tenant(session)
        assert mismatches == []
        return Stored(
            profile=profile,
            children=await session.scalar(select(func.count()).select_from(GuestChild)) or 0,
            consents=list(await session.scalars(select(Consent).order_by(Consent.recorded_at))),
            roles=list(await session.scalars(select(UserRole).where(UserRole.user_id == person))),
            cards=cards,
            ledger=(rows, total),
            erasures_logged=list(
                await session.scalars(
                    select(ActivityLog).where(ActivityLog.action == "user.erased")
                )
            ),
        )


async def _user(runtime: Runtime, person: uuid.UUID) -> User:
    async with runtime.db.transaction() as session:
        user = await session.get(User, person)
    assert user is not None
    return user


def _profile_fields(profile: GuestProfile) -> dict[str, Any]:
    return {field: getattr(profile, field) for field in PROFILE}


async def _refreshes(network: Network) -> bool:
    answer = await network.client.post(
        "/api/auth/refresh", json={"refresh_token": network.tokens["refresh_token"]}
    )
    if answer.status_code == 200:
        network.tokens = answer.json()
    return answer.status_code == 200


async def test_erasure_in_one_network_leaves_the_other_intact(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    erased, kept = await _join(client, runtime, auth), await _join(client, runtime, auth)
    person = await _person(erased)
    for network in (erased, kept):
        await _fill(network, person)
    ledger_before = (await _stored(runtime, erased, person)).ledger

    assert (await erased.erase()).status_code == 204

    gone = await _stored(runtime, erased, person)
    assert set(_profile_fields(gone.profile).values()) == {None}
    assert gone.children == 0
    assert [c.ip_address for c in gone.consents] == [None] * len(gone.consents)
    last = gone.consents[-1]
    assert (last.kind.value, last.granted, last.source) == (
        "PERSONAL_DATA",
        False,
        "ERASURE_REQUEST",
    )
    assert [r.is_active for r in gone.roles] == [False]
    assert [c.status for c in gone.cards] == [CardStatus.DELETED]
    assert gone.cards[0].user_id == person  # the ledger still knows whose card it was
    assert gone.ledger == ledger_before  # every row and amount stays (and verifies)
    (logged,) = gone.erasures_logged
    assert (logged.after, logged.ip, logged.user_agent) == ({"scope": "network"}, None, None)
    assert not await _refreshes(erased)
    identify = await client.post(
        "/api/cards/identify",
        json={"restaurant_id": str(erased.restaurant.id), "phone": E164},
        headers=erased.cashier,
    )
    assert_problem(identify, 404, "card_not_found")

    # The other network: the same person, untouched, still signing in.
    other = await _stored(runtime, kept, person)
    assert _profile_fields(other.profile) == PROFILE | {"birth_date": other.profile.birth_date}
    assert str(other.profile.birth_date) == PROFILE["birth_date"]
    assert other.children == 1
    assert {str(c.ip_address) for c in other.consents} == {CLIENT_IP}
    assert [c.status for c in other.cards] == [CardStatus.ACTIVE]
    assert other.erasures_logged == []
    user = await _user(runtime, person)
    assert (user.phone, user.is_active, user.erased_at) == (E164, True, None)
    assert await _refreshes(kept)
    with time_machine.travel(utcnow() + timedelta(seconds=61)):  # past the resend cooldown
        assert (await register(client, kept.tenant.id)).status_code == 202
        again = await verify(client, kept.tenant.id, last_code(runtime))
        assert (await register(client, erased.tenant.id)).status_code == 202
        refused = await verify(client, erased.tenant.id, last_code(runtime))
    assert again.status_code == 200, again.text
    assert_problem(refused, 403, "guest_blocked")  # their role there is deactivated
    await kept.sale(person, 10000, "B-3")


async def test_erasure_in_the_last_network_anonymizes_the_person(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    first, second = await _join(client, runtime, auth), await _join(client, runtime, auth)
    person = await _person(first)
    assert (await first.erase({"scope": "network"})).status_code == 204
    assert (await _user(runtime, person)).erased_at is None

    assert (await second.erase()).status_code == 204

    user = await _user(runtime, person)
    assert (user.phone, user.phone_hash, user.email, user.telegram_id, user.is_active) == (
        None,
        None,
        None,
        None,
        False,
    )
    assert user.erased_at is not None


async def test_erasure_of_everything_covers_every_network_and_the_account(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    asked, other = await _join(client, runtime, auth), await _join(client, runtime, auth)
    person = await _person(asked)
    for network in (asked, other):
        await _fill(network, person)
    ledgers = [(await _stored(runtime, n, person)).ledger for n in (asked, other)]

    assert (await asked.erase({"scope": "all"})).status_code == 204

    for network, ledger in zip((asked, other), ledgers, strict=True):
        gone = await _stored(runtime, network, person)
        assert set(_profile_fields(gone.profile).values()) == {None}
        assert (gone.children, gone.ledger) == (0, ledger)
        assert [c.status for c in gone.cards] == [CardStatus.DELETED]
        assert [c.ip_address for c in gone.consents] == [None] * len(gone.consents)
        assert [e.after for e in gone.erasures_logged] == [{"scope": "all"}]
        assert not await _refreshes(network)
    user = await _user(runtime, person)
    assert (user.phone, user.phone_hash, user.is_active) == (None, None, False)
    assert user.erased_at is not None


async def test_an_unknown_erasure_scope_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    network = await _join(client, runtime, auth)
    for body in ({"scope": "everything"}, {"scope": "all", "also": "this"}, {"scope": None}):
        assert_problem(await network.erase(body), 422, "validation_error")
    data = await client.get("/api/me/data?scope=universe", headers=network.guest)
    assert_problem(data, 422, "validation_error")
    assert await _refreshes(network)  # nothing was erased


async def test_export_holds_everything_per_network(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    here, there = await _join(client, runtime, auth), await _join(client, runtime, auth)
    person = await _person(here)
    await _fill(here, person)

    answer = await client.get("/api/me/data", headers=here.guest)

    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["user"]["phone"] == E164
    (network,) = data["networks"]
    assert (network["tenant_id"], network["name"]) == (str(here.tenant.id), here.tenant.name)
    assert {k: network["profile"][k] for k in PROFILE} == PROFILE
    assert [c["name"] for c in network["children"]] == ["Миша"]
    assert [(c["kind"], c["granted"], c["source"], c["ip"]) for c in network["consents"]] == [
        ("PRIVACY_POLICY", True, "SMS_REGISTRATION", CLIENT_IP),
        ("PERSONAL_DATA", True, "SMS_REGISTRATION", CLIENT_IP),
        ("MARKETING", True, "SMS_REGISTRATION", CLIENT_IP),
        ("MARKETING", False, "GUEST_APP", CLIENT_IP),
    ]
    assert [(m["role"], m["active"]) for m in network["memberships"]] == [("GUEST", True)]
    assert [s["active"] for s in network["sessions"]] == [True]
    (card,) = network["cards"]
    assert (card["status"], card["level"], card["balance"], card["total_visits"]) == (
        "ACTIVE",
        "BRONZE",
        100,  # 5 % of 1500 + 500 rubles
        2,
    )
    assert [
        (t["type"], t["amount"], t["check_number"], t["channel"]) for t in card["transactions"]
    ] == [
        ("ACCRUAL", 75, "A-1", "STAFF"),
        ("ACCRUAL", 25, "A-2", "STAFF"),
    ]
    assert {t["restaurant"] for t in card["transactions"]} == {here.restaurant.name}
    assert network["pos_orders"] == []
    # The keys clients read before `networks`, with the same entries.
    for key in ("memberships", "consents", "sessions"):
        assert data[key] == network[key]

    everywhere = (await client.get("/api/me/data?scope=all", headers=here.guest)).json()
    assert {n["tenant_id"] for n in everywhere["networks"]} == {
        str(here.tenant.id),
        str(there.tenant.id),
    }
    assert len(everywhere["memberships"]) == 2


async def test_export_and_erasure(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    email = await make_staff(runtime, tenant, Role.RESTAURANT_ADMIN)
    tokens = await login(client, email)
    data = (await client.get("/api/me/data", headers=bearer(tokens))).json()
    assert data["user"]["email"] == email
    assert data["memberships"][0]["role"] == "RESTAURANT_ADMIN"
    assert len(data["sessions"]) == 1

    assert (await client.post("/api/me/erase", headers=bearer(tokens))).status_code == 204
    user_id = uuid.UUID(data["user"]["id"])
    async with runtime.db.transaction() as session:
        user = await session.get(User, user_id)
    assert user is not None
    assert (user.email, user.email_hash, user.phone, user.password_hash) == (None,) * 4
    assert user.erased_at is not None
    refresh = await client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert_problem(refresh, 401, "invalid_refresh_token")
    relogin = await client.post("/api/auth/login", json={"login": email, "password": PASSWORD})
    assert_problem(relogin, 401, "invalid_credentials")
