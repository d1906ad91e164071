"""Every public sign-in route is limited per client IP, and wrong SMS codes count against the
phone like failed logins against an account."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import select

from maxloyalty.app import create_app
from maxloyalty.audit.models import ActivityLog
from maxloyalty.runtime import Runtime
from tests.factories import make_tenant
from tests.guests.test_sign_in import last_code, register, verify
from tests.test_app import assert_problem


@asynccontextmanager
async def client_from(runtime: Runtime, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime.settings)
    app.state.runtime = runtime
    transport = httpx.ASGITransport(app=app, client=(ip, 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_verify_is_limited_per_ip(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    # Other phones each time: the per-phone lock must not be what stops the spray.
    answers = [
        await client.post(
            "/api/auth/verify",
            json={"phone": f"+7925000{i:04d}", "tenant_id": str(tenant.id), "code": "000000"},
        )
        for i in range(11)
    ]
    assert [a.status_code for a in answers[:10]] == [400] * 10
    assert_problem(answers[10], 429, "rate_limited")
    assert int(answers[10].headers["Retry-After"]) >= 1
    # Another IP is not held back by this one.
    async with client_from(runtime, "198.51.100.9") as other:
        fresh = await other.post(
            "/api/auth/verify",
            json={"phone": "+79250009999", "tenant_id": str(tenant.id), "code": "000000"},
        )
    assert_problem(fresh, 400, "otp_invalid")


async def test_wrong_codes_lock_the_phone_across_ips(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    assert (await register(client, tenant.id)).status_code == 202
    code = last_code(runtime)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    # Five wrong codes from five addresses: no per-IP limit is reached.
    for n in range(5):
        async with client_from(runtime, f"198.51.100.{n + 10}") as c:
            assert_problem(await verify(c, tenant.id, wrong), 400, "otp_invalid")
    async with client_from(runtime, "198.51.100.99") as c:
        locked = await verify(c, tenant.id, code)
    assert_problem(locked, 429, "account_locked")
    assert int(locked.headers["Retry-After"]) >= 1
    async with runtime.db.transaction(tenant.id) as session:
        actions = list(await session.scalars(select(ActivityLog.action)))
    assert actions.count("auth.otp_failed") == 5
    assert "auth.otp_locked" in actions


async def test_failed_verify_without_a_live_code_counts_too(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    for n in range(5):
        async with client_from(runtime, f"198.51.100.{n + 10}") as c:
            assert_problem(await verify(c, tenant.id, "123456"), 400, "otp_invalid")
    # A code asked for now is still refused until the failures age out.
    assert (await register(client, tenant.id)).status_code == 202
    assert_problem(await verify(client, tenant.id, last_code(runtime)), 429, "account_locked")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/refresh", {"refresh_token": f"{uuid.uuid4().hex}.nope"}),
        ("/api/auth/logout", {"refresh_token": f"{uuid.uuid4().hex}.nope"}),
        ("/api/auth/telegram", {"tenant_id": str(uuid.uuid4()), "init_data": "hash=bad"}),
    ],
)
async def test_other_sign_in_routes_follow_the_default_limit(
    client: httpx.AsyncClient,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    body: dict[str, str],
) -> None:
    monkeypatch.setattr(runtime.settings, "rate_limit_default", "3/minute")
    answers = [await client.post(path, json=body) for _ in range(4)]
    assert all(400 <= a.status_code < 429 for a in answers[:3]), [a.text for a in answers]
    assert_problem(answers[3], 429, "rate_limited")
    assert int(answers[3].headers["Retry-After"]) >= 1


async def test_register_counts_every_request_per_ip(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime.settings, "rate_limit_otp_ip", "3/hour")
    tenant = await make_tenant(runtime)
    # Refused requests count too: a bad phone costs the caller as much as a good one.
    answers = [await register(client, tenant.id, {"phone": "12"}) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [422] * 3
    assert_problem(answers[3], 429, "rate_limited")
