"""The Mini App's initData is checked with the network's own bot token once it connected
one; networks without a bot keep the installation's token."""

from __future__ import annotations

import httpx

from maxloyalty.runtime import Runtime
from tests.conftest import TELEGRAM_BOT_TOKEN
from tests.factories import make_tenant
from tests.identity.test_primitives import signed_init_data
from tests.integrations.telegram.conftest import Network
from tests.integrations.telegram.fake_bot_api import TOKEN
from tests.test_app import assert_problem


async def sign_in(client: httpx.AsyncClient, tenant_id: object, init_data: str) -> httpx.Response:
    return await client.post(
        "/api/auth/telegram", json={"init_data": init_data, "tenant_id": str(tenant_id)}
    )


async def test_the_networks_own_bot_signs_its_mini_app(
    client: httpx.AsyncClient, runtime: Runtime, connected: Network
) -> None:
    tenant = connected.tenant
    accepted = await sign_in(client, tenant.id, signed_init_data(TOKEN, user_id=777))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["access_token"]

    for other in (TELEGRAM_BOT_TOKEN, "999:ANOTHER"):
        refused = await sign_in(client, tenant.id, signed_init_data(other, user_id=777))
        assert_problem(refused, 401, "invalid_init_data")

    # A network without its own bot: the installation's token, and not another network's.
    plain = await make_tenant(runtime)
    fallback = await sign_in(client, plain.id, signed_init_data(TELEGRAM_BOT_TOKEN, user_id=778))
    assert fallback.status_code == 200, fallback.text
    foreign = await sign_in(client, plain.id, signed_init_data(TOKEN, user_id=778))
    assert_problem(foreign, 401, "invalid_init_data")
