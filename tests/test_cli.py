"""The command line and the demo network."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from typer.testing import CliRunner

from maxloyalty import __version__
from maxloyalty.cli import app
from maxloyalty.demo import NETWORK, _load
from maxloyalty.network.models import PointOfSale, Restaurant, Tenant
from maxloyalty.runtime import Runtime
from tests.factories import bearer, login


def test_version_and_help() -> None:
    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0
    assert version.output.strip() == f"maxloyalty {__version__}"
    help_text = runner.invoke(app, ["--help"]).output
    for command in ("serve", "worker", "migrate", "demo"):
        assert command in help_text
    serve_help = runner.invoke(app, ["serve", "--help"]).output
    for option in ("--host", "--port", "--workers", "--no-worker"):
        assert option in serve_help


async def test_demo_loads_once(runtime: Runtime, client: httpx.AsyncClient) -> None:
    first = await _load(runtime)
    assert first.created
    names = [t["name"] for t in first.data["tenants"]]
    assert names == [tenant.name for tenant, _ in NETWORK]
    again = await _load(runtime)
    assert not again.created
    assert "already" in again.message
    assert again.data == first.data  # scripts can still read the logins

    owner = first.data["owner"]
    assert (await login(client, owner["email"], owner["password"]))["access_token"]
    chain = first.data["tenants"][0]
    roles = sorted(s["role"] for s in chain["staff"])
    assert roles == ["CASHIER", "CASHIER", "CASHIER", "MANAGER", "RESTAURANT_ADMIN"]
    cashier = next(s for s in chain["staff"] if s["role"] == "CASHIER")
    tokens = await login(client, cashier["email"], cashier["password"])
    visible = (await client.get("/api/restaurants", headers=bearer(tokens))).json()["items"]
    assert [r["id"] for r in visible] == cashier["restaurant_ids"]

    async with runtime.db.platform_session() as platform:
        tenants = await platform.scalar(select(func.count()).select_from(Tenant))
        restaurants = await platform.scalar(select(func.count()).select_from(Restaurant))
        points = await platform.scalar(select(func.count()).select_from(PointOfSale))
        zones = set(await platform.scalars(select(Restaurant.timezone)))
    assert tenants == len(NETWORK)
    assert restaurants == sum(len(r) for _, r in NETWORK)
    assert points == sum(len(p) for _, rs in NETWORK for _, p in rs)
    assert len(zones) >= 3  # the chain spans time zones
