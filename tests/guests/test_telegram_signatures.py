"""Telegram sign-in refuses what is not a genuine signature."""

from __future__ import annotations

import httpx

from maxloyalty.runtime import Runtime
from tests.factories import make_tenant
from tests.test_app import assert_problem


async def test_non_ascii_signatures_are_401(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    answer = await client.post(
        "/api/auth/telegram",
        json={"init_data": "auth_date=1&user=%7B%7D&hash=%C3%A9", "tenant_id": str(tenant.id)},
    )
    assert_problem(answer, 401, "invalid_init_data")
