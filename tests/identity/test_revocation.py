"""What an admin (or the person) revokes stops at once in the process that did it: blocked
staff, changed roles and restaurants, logouts, password changes, erasure, revoked keys.
The cross-process side is in test_revocation_processes.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import event

from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.service import revocation
from maxloyalty.identity.service.tokens import issue_access_token
from maxloyalty.kit.signing import TokenKeys
from maxloyalty.network.models import Restaurant, Tenant
from maxloyalty.runtime import Runtime
from tests.conftest import TEST_SECRET, TokenFactory
from tests.factories import PASSWORD, bearer, login, make_restaurant, make_staff, make_tenant
from tests.test_app import assert_problem

NEW_PASSWORD = "another correct horse"


@dataclass
class Network:
    tenant: Tenant
    first: Restaurant
    second: Restaurant
    admin: dict[str, str]


async def network(client: httpx.AsyncClient, runtime: Runtime) -> Network:
    tenant = await make_tenant(runtime)
    first, second = await make_restaurant(runtime, tenant), await make_restaurant(runtime, tenant)
    admin = bearer(await login(client, await make_staff(runtime, tenant, Role.RESTAURANT_ADMIN)))
    return Network(tenant, first, second, admin)


async def cashier(
    client: httpx.AsyncClient, runtime: Runtime, net: Network
) -> tuple[str, dict[str, str], dict[str, str]]:
    """A cashier of the first restaurant: their id, tokens and Authorization header."""
    email = await make_staff(runtime, net.tenant, Role.CASHIER, (net.first,))
    tokens = await login(client, email)
    me = (await client.get("/api/auth/me", headers=bearer(tokens))).json()
    return me["subject"], tokens, bearer(tokens)


async def sees_first(client: httpx.AsyncClient, net: Network, headers: dict[str, str]) -> int:
    answer = await client.get(f"/api/restaurants/{net.first.id}", headers=headers)
    return answer.status_code


async def test_a_blocked_cashier_is_refused_at_once_and_unblocking_restores_sign_in(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    net = await network(client, runtime)
    person, _, headers = await cashier(client, runtime, net)
    assert await sees_first(client, net, headers) == 200
    blocked = await client.post(
        f"/api/staff/{person}/block", json={"reason": "left"}, headers=net.admin
    )
    assert blocked.status_code == 200, blocked.text
    for _ in range(3):
        answer = await client.get(f"/api/restaurants/{net.first.id}", headers=headers)
        assert_problem(answer, 401, "session_revoked")

    restored = await client.patch(
        f"/api/staff/{person}", json={"is_active": True}, headers=net.admin
    )
    assert restored.status_code == 200, restored.text
    # The old token stays dead; signing in again works.
    assert await sees_first(client, net, headers) == 401
    staff = (await client.get("/api/staff", headers=net.admin)).json()["items"]
    email = next(s["email"] for s in staff if s["id"] == person)
    assert await sees_first(client, net, bearer(await login(client, email))) == 200


async def test_a_moved_cashier_keeps_no_reach_into_the_old_restaurant(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    net = await network(client, runtime)
    person, _, headers = await cashier(client, runtime, net)
    assert await sees_first(client, net, headers) == 200
    moved = await client.patch(
        f"/api/staff/{person}", json={"restaurant_ids": [str(net.second.id)]}, headers=net.admin
    )
    assert moved.status_code == 200, moved.text
    assert_problem(
        await client.get(f"/api/restaurants/{net.first.id}", headers=headers),
        401,
        "session_revoked",
    )


async def test_logout_ends_the_access_token_too(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    net = await network(client, runtime)
    _, tokens, headers = await cashier(client, runtime, net)
    assert await sees_first(client, net, headers) == 200
    out = await client.post("/api/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 204
    assert_problem(await client.get("/api/auth/me", headers=headers), 401, "session_revoked")


async def test_a_password_change_ends_every_older_session(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    net = await network(client, runtime)
    email = await make_staff(runtime, net.tenant, Role.MANAGER, (net.first,))
    laptop, phone = bearer(await login(client, email)), bearer(await login(client, email))
    wrong = await client.post(
        "/api/auth/password",
        json={"current_password": "not it", "new_password": NEW_PASSWORD},
        headers=laptop,
    )
    assert_problem(wrong, 403, "invalid_credentials")
    assert "www-authenticate" not in wrong.headers  # a 403 asks for no new credentials
    assert await sees_first(client, net, phone) == 200  # a wrong try changes nothing

    changed = await client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=laptop,
    )
    assert changed.status_code == 200, changed.text
    for old in (laptop, phone):
        assert_problem(await client.get("/api/auth/me", headers=old), 401, "session_revoked")
    assert await sees_first(client, net, bearer(changed.json())) == 200
    stale = await client.post("/api/auth/login", json={"login": email, "password": PASSWORD})
    assert_problem(stale, 401, "invalid_credentials")
    assert await sees_first(client, net, bearer(await login(client, email, NEW_PASSWORD))) == 200


async def test_erasure_ends_the_access_token(client: httpx.AsyncClient, runtime: Runtime) -> None:
    net = await network(client, runtime)
    _, _, headers = await cashier(client, runtime, net)
    assert (await client.post("/api/me/erase", headers=headers)).status_code == 204
    assert_problem(await client.get("/api/auth/me", headers=headers), 401, "session_revoked")


async def test_a_token_for_a_session_that_never_existed_is_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    net = await network(client, runtime)
    person, _, _ = await cashier(client, runtime, net)
    forged_sid = issue_access_token(
        TokenKeys(TEST_SECRET),
        Principal(uuid.UUID(person), Role.CASHIER, net.tenant.id, frozenset({net.first.id})),
        runtime.sessions.access_ttl,
        uuid.uuid4(),
    )
    answer = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {forged_sid}"})
    assert_problem(answer, 401, "session_revoked")


@contextmanager
def statements(runtime: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_the_check_costs_no_query_while_remembered(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    net = await network(client, runtime)
    _, _, headers = await cashier(client, runtime, net)
    revocation.facts.clear()  # as in a process that has not seen this session yet
    with statements(runtime) as first:
        assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    with statements(runtime) as second:
        assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    assert any("user_sessions" in s for s in first)
    assert second == []  # /api/auth/me itself reads nothing: all of it was the check


async def test_only_people_with_a_password_change_it(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    guest, cashier = await auth(Role.GUEST, tenant.id), await auth(Role.CASHIER, tenant.id)
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    answer = await client.post("/api/auth/password", json=body, headers=guest)
    assert_problem(answer, 403, "role_forbidden")
    short = await client.post(
        "/api/auth/password", json=body | {"new_password": "short"}, headers=cashier
    )
    assert_problem(short, 422, "validation_error")


async def test_a_refresh_racing_a_password_change_leaves_no_live_session(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime.settings, "rate_limit_login", "1000/minute")
    net = await network(client, runtime)
    email = await make_staff(runtime, net.tenant, Role.MANAGER, (net.first,))
    password = PASSWORD
    for n in range(8):
        owner, thief = await login(client, email, password), await login(client, email, password)
        new = f"{NEW_PASSWORD} {n}"
        changed, stolen = await asyncio.gather(
            client.post(
                "/api/auth/password",
                json={"current_password": password, "new_password": new},
                headers=bearer(owner),
            ),
            client.post("/api/auth/refresh", json={"refresh_token": thief["refresh_token"]}),
        )
        assert changed.status_code == 200, changed.text
        password = new
        if stolen.status_code == 200:  # rotated first: the change must still end it
            me = await client.get("/api/auth/me", headers=bearer(stolen.json()))
            assert_problem(me, 401, "session_revoked")
            again = {"refresh_token": stolen.json()["refresh_token"]}
            assert_problem(
                await client.post("/api/auth/refresh", json=again), 401, "invalid_refresh_token"
            )
        else:
            assert_problem(stolen, 401, "invalid_refresh_token")
