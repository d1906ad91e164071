"""Staff sign-in: login, refresh rotation with reuse detection, logout, limits, blocks."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from maxloyalty.audit.models import ActivityLog
from maxloyalty.identity.models import User, UserSession
from maxloyalty.identity.principal import Role
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import (
    PASSWORD,
    bearer,
    login,
    make_restaurant,
    make_staff,
    make_tenant,
)
from tests.test_app import assert_problem


async def test_login_me_refresh_logout(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    email = await make_staff(runtime, tenant, Role.CASHIER, (restaurant,))

    tokens = await login(client, email.upper())  # emails are case-insensitive
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 15 * 60
    me = (await client.get("/api/auth/me", headers=bearer(tokens))).json()
    assert me["role"] == "CASHIER"
    assert me["tenant_id"] == str(tenant.id)
    assert me["restaurant_ids"] == [str(restaurant.id)]

    rotated = await client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert (await client.get("/api/auth/me", headers=bearer(new))).status_code == 200

    out = await client.post("/api/auth/logout", json={"refresh_token": new["refresh_token"]})
    assert out.status_code == 204
    after = await client.post("/api/auth/refresh", json={"refresh_token": new["refresh_token"]})
    assert_problem(after, 401, "invalid_refresh_token")


async def test_reused_refresh_token_revokes_the_family(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    email = await make_staff(runtime, tenant, Role.RESTAURANT_ADMIN)
    first = await login(client, email)
    second = (
        await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()

    # An attacker replays the first token: refused, and the legitimate one dies with it.
    replay = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(replay, 401, "refresh_token_reused")
    legit = await client.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert_problem(legit, 401, "invalid_refresh_token")

    async with runtime.db.transaction(tenant.id) as session:
        rows = list(await session.scalars(select(UserSession)))
        actions = set(await session.scalars(select(ActivityLog.action)))
    assert len(rows) == 2
    assert all(r.revoked_at is not None for r in rows)
    assert "auth.refresh_reused" in actions


async def test_forged_refresh_tokens_are_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    email = await make_staff(runtime, tenant, Role.RESTAURANT_ADMIN)
    tokens = await login(client, email)
    _, secret = tokens["refresh_token"].split(".", 1)
    for forged in (f"{'0' * 32}.{secret}", "garbage-token-value", tokens["refresh_token"] + "x"):
        answer = await client.post("/api/auth/refresh", json={"refresh_token": forged})
        assert_problem(answer, 401, "invalid_refresh_token")


async def test_wrong_password_is_audited_and_locks_after_five(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    email = await make_staff(
        runtime, tenant, Role.MANAGER, (await make_restaurant(runtime, tenant),)
    )
    for _ in range(5):
        wrong = await client.post("/api/auth/login", json={"login": email, "password": "nope"})
        assert_problem(wrong, 401, "invalid_credentials")
    locked = await client.post("/api/auth/login", json={"login": email, "password": PASSWORD})
    assert_problem(locked, 429, "account_locked")
    assert 1 <= int(locked.headers["Retry-After"]) <= 15 * 60
    unknown = await client.post(
        "/api/auth/login", json={"login": "nobody@example.com", "password": "x"}
    )
    assert_problem(unknown, 401, "invalid_credentials")  # same answer as a wrong password

    # Failed logins name no tenant: only the platform path reads them.
    async with runtime.db.platform_session() as session:
        entries = list(
            await session.scalars(
                select(ActivityLog.action).where(ActivityLog.action.like("auth.login%"))
            )
        )
    assert entries.count("auth.login_failed") == 6
    assert entries.count("auth.login_locked") == 1
    assert "auth.login" not in entries


async def test_per_ip_login_limit(client: httpx.AsyncClient, runtime: Runtime) -> None:
    answers = [
        await client.post("/api/auth/login", json={"login": f"u{i}@example.com", "password": "x"})
        for i in range(11)
    ]
    assert [a.status_code for a in answers[:10]] == [401] * 10
    assert_problem(answers[10], 429, "rate_limited")
    assert int(answers[10].headers["Retry-After"]) >= 1


async def test_blocked_staff_cannot_sign_in_or_refresh(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    admin = await login(client, await make_staff(runtime, tenant, Role.RESTAURANT_ADMIN))
    cashier_email = await make_staff(runtime, tenant, Role.CASHIER, (restaurant,))
    cashier = await login(client, cashier_email)
    staff_list = (await client.get("/api/staff", headers=bearer(admin))).json()["items"]
    cashier_id = next(s["id"] for s in staff_list if s["email"] == cashier_email)

    blocked = await client.post(
        f"/api/staff/{cashier_id}/block", json={"reason": "left"}, headers=bearer(admin)
    )
    assert blocked.status_code == 200, blocked.text
    assert blocked.json()["is_active"] is False
    refresh = await client.post(
        "/api/auth/refresh", json={"refresh_token": cashier["refresh_token"]}
    )
    assert_problem(refresh, 401, "invalid_refresh_token")
    again = await client.post(
        "/api/auth/login", json={"login": cashier_email, "password": PASSWORD}
    )
    assert_problem(again, 403, "no_active_role")


async def test_person_in_two_networks_chooses_one(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    a, b = await make_tenant(runtime), await make_tenant(runtime)
    email = await make_staff(runtime, a, Role.RESTAURANT_ADMIN)
    await make_staff(runtime, b, Role.RESTAURANT_ADMIN, email=email)
    ambiguous = await client.post("/api/auth/login", json={"login": email, "password": PASSWORD})
    assert_problem(ambiguous, 409, "tenant_choice_required")
    tokens = await login(client, email, tenant_id=b.id)
    me = (await client.get("/api/auth/me", headers=bearer(tokens))).json()
    assert me["tenant_id"] == str(b.id)


async def test_phone_and_email_are_encrypted_at_rest(runtime: Runtime) -> None:
    from sqlalchemy import text

    tenant = await make_tenant(runtime)
    email = await make_staff(runtime, tenant, Role.RESTAURANT_ADMIN)
    async with runtime.db.transaction() as session:
        raw = (await session.execute(text("SELECT email_encrypted, email_hash FROM users"))).one()
        user = await session.scalar(select(User))
    assert email not in raw.email_encrypted
    assert len(raw.email_hash) == 64
    assert user is not None
    assert user.email == email


async def test_owner_signs_in_and_reaches_platform_routes(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    from maxloyalty.network.service.accounts import create_owner

    await create_owner(runtime, email="Owner@Example.com", password=PASSWORD, phone=None)
    tokens = await login(client, "owner@example.com")
    me = (await client.get("/api/auth/me", headers=bearer(tokens))).json()
    assert me == {
        "subject": me["subject"],
        "role": "OWNER",
        "tenant_id": None,
        "restaurant_ids": [],
    }
    listed = await client.get("/api/platform/tenants", headers=bearer(tokens))
    assert listed.status_code == 200
