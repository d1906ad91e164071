"""Two API processes on one database, with Redis and without: whatever is revoked through
one of them is refused by both within a second (identity.revocation)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from maxloyalty.config import Settings
from maxloyalty.identity.principal import Role
from maxloyalty.runtime import Runtime
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD, bearer, login, make_restaurant, make_staff, make_tenant
from tests.live import free_port

# The processes forget what they know after identity.revocation.FACT_SECONDS (1 s); the
# rest is room for a loaded machine between a refusal and our noticing it.
WITHIN = 1.5

Servers = tuple[httpx.AsyncClient, httpx.AsyncClient]


def _start(
    settings: Settings, owner_url: str, port: int, redis: bool, log: Path
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {
        "DATABASE_URL": owner_url,
        "MAXLOYALTY_DATA_DIR": str(settings.data_dir),
        "MAXLOYALTY_SECRET_KEY": TEST_SECRET,
        "MAXLOYALTY_REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "MAXLOYALTY_RUN_WORKER_IN_PROCESS": "false",
        "MAXLOYALTY_RATE_LIMIT_LOGIN": "1000/minute",
        "MAXLOYALTY_LOG_LEVEL": "WARNING",
    }
    if redis:
        assert settings.redis_url
        env["REDIS_URL"] = settings.redis_url
    command = [sys.executable, "-m", "uvicorn", "maxloyalty.app:create_app", "--factory"]
    return subprocess.Popen(  # noqa: S603 - our own app, as an operator would start it
        [*command, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def _wait_up(client: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("the server did not start")


@pytest.fixture(params=["redis", "memory"])
async def servers(
    request: pytest.FixtureRequest,
    settings: Settings,
    migrated: str,
    tmp_path: Path,
) -> AsyncIterator[Servers]:
    redis = request.param == "redis"
    if redis and not settings.redis_url:
        pytest.skip("REDIS_URL is not set")
    ports = [free_port(), free_port()]
    processes = [
        _start(settings, migrated, port, redis, tmp_path / f"server-{n}.log")
        for n, port in enumerate(ports)
    ]
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") for port in ports]
    try:
        for client, process in zip(clients, processes, strict=True):
            await _wait_up(client, process)
        yield clients[0], clients[1]
    finally:
        for client in clients:
            await client.aclose()
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


async def _status(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> tuple[int, str]:
    answer = await client.get(path, headers=headers)
    return answer.status_code, answer.json().get("code", "") if answer.status_code >= 400 else ""


async def accepted_by_both(servers: Servers, path: str, headers: dict[str, str]) -> None:
    for server in servers:
        assert await _status(server, path, headers) == (200, "")


async def refused_by_both(
    servers: Servers, path: str, headers: dict[str, str], code: str, since: float
) -> None:
    """Each process refuses with 401 `code` within WITHIN seconds of `since`, and keeps
    refusing."""
    for server in servers:
        while True:
            sent = time.monotonic()  # an answer counts from when it was asked for
            answer = await _status(server, path, headers)
            if answer == (401, code):
                break
            assert answer == (200, ""), answer
            assert sent - since < WITHIN, f"still accepted after {WITHIN} s"
            await asyncio.sleep(0.05)
    for server in servers:
        assert await _status(server, path, headers) == (401, code)


async def test_revocations_reach_every_process(servers: Servers, runtime: Runtime) -> None:
    a, b = servers
    tenant = await make_tenant(runtime)
    first, second = await make_restaurant(runtime, tenant), await make_restaurant(runtime, tenant)
    admin_email = await make_staff(runtime, tenant, Role.RESTAURANT_ADMIN)
    admin = bearer(await login(a, admin_email))
    here = f"/api/restaurants/{first.id}"

    async def cashier() -> tuple[str, str, dict[str, str]]:
        email = await make_staff(runtime, tenant, Role.CASHIER, (first,))
        tokens = await login(b, email)
        person = (await b.get("/api/auth/me", headers=bearer(tokens))).json()["subject"]
        await accepted_by_both(servers, here, bearer(tokens))
        return person, tokens["refresh_token"], bearer(tokens)

    # Blocked through A.
    person, _, headers = await cashier()
    assert (
        await a.post(f"/api/staff/{person}/block", json={"reason": "left"}, headers=admin)
    ).is_success
    await refused_by_both(servers, here, headers, "session_revoked", time.monotonic())
    # Unblocking restores signing in (the old token stays dead).
    assert (
        await b.patch(f"/api/staff/{person}", json={"is_active": True}, headers=admin)
    ).is_success
    email = next(
        s["email"]
        for s in (await a.get("/api/staff", headers=admin)).json()["items"]
        if s["id"] == person
    )
    await accepted_by_both(servers, here, bearer(await login(a, email)))

    # Moved to another restaurant through B.
    person, _, headers = await cashier()
    moved = await b.patch(
        f"/api/staff/{person}", json={"restaurant_ids": [str(second.id)]}, headers=admin
    )
    assert moved.is_success
    await refused_by_both(servers, here, headers, "session_revoked", time.monotonic())

    # Signed out through A.
    _, refresh, headers = await cashier()
    assert (await a.post("/api/auth/logout", json={"refresh_token": refresh})).status_code == 204
    await refused_by_both(servers, here, headers, "session_revoked", time.monotonic())

    # A password changed through B: the token from before is refused.
    manager_email = await make_staff(runtime, tenant, Role.MANAGER, (first,))
    before = bearer(await login(a, manager_email))
    await accepted_by_both(servers, here, before)
    body = {"current_password": PASSWORD, "new_password": "a brand new password"}
    after = await b.post("/api/auth/password", json=body, headers=before)
    assert after.is_success, after.text
    await refused_by_both(servers, here, before, "session_revoked", time.monotonic())
    await accepted_by_both(servers, here, bearer(after.json()))

    # An API key revoked through A.
    issued = (await a.post("/api/api-keys", json={"name": "Till"}, headers=admin)).json()
    key = {"Authorization": f"Bearer {issued['key']}"}
    await accepted_by_both(servers, "/api/auth/me", key)
    assert (await a.delete(f"/api/api-keys/{issued['id']}", headers=admin)).is_success
    await refused_by_both(servers, "/api/auth/me", key, "api_key_revoked", time.monotonic())

    # A POS integration switched off through B: its key, the same answer from both.
    created = await a.post(
        "/api/pos/integrations",
        json={"restaurant_id": str(first.id), "system": "CUSTOM", "name": "Till"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    till = {"Authorization": f"Bearer {created.json()['api_key']}"}
    await accepted_by_both(servers, "/api/auth/me", till)
    switched = await b.patch(
        f"/api/pos/integrations/{created.json()['id']}", json={"is_active": False}, headers=admin
    )
    assert switched.is_success
    await refused_by_both(servers, "/api/auth/me", till, "api_key_suspended", time.monotonic())
    for server in servers:
        call = await server.post("/api/pos/v1/identify", json={"code": "000000"}, headers=till)
        assert (call.status_code, call.json()["code"]) == (401, "api_key_suspended")
