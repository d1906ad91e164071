"""The command line and the demo network."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from maxloyalty import __version__
from maxloyalty.cli import app
from maxloyalty.demo import NETWORK, _load
from maxloyalty.ledger.models import PointTransaction
from maxloyalty.ledger.verify import verify_tenant
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
    first = await _load(runtime, guests=6)
    assert first.created
    names = [t["name"] for t in first.data["tenants"]]
    assert names == [tenant.name for tenant, _ in NETWORK]
    again = await _load(runtime, guests=6)
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

    till = next(t for t in chain["tills"] if t["system"] == "CUSTOM")
    card = await client.post(
        "/api/pos/v1/identify",
        json={"code": chain["guests"][0]["card_code"]},
        headers={"Authorization": f"Bearer {till['api_key']}"},
    )
    assert card.status_code == 200, card.text  # the demo till's key works as printed

    guests = chain["guests"]
    assert len(guests) == 6
    assert all(len(g["card_code"]) == 6 and g["phone"].startswith("+79") for g in guests)
    async with runtime.db.transaction(uuid.UUID(chain["id"])) as session:
        visits = await session.scalar(select(func.count()).select_from(PointTransaction))
        _, mismatches = await verify_tenant(session)
    assert visits
    assert mismatches == []
    balance = (
        await client.get(
            f"/api/guest/{guests[0]['id']}/balance",
            headers=bearer(await login(client, cashier["email"], cashier["password"])),
        )
    ).json()
    assert balance["balance"] == guests[0]["balance"]


async def test_ledger_verify_command_fails_on_a_mismatch(
    runtime: Runtime, owner_engine: AsyncEngine, owner_url: str
) -> None:
    await _load(runtime, guests=3)
    env = {
        **os.environ,
        "DATABASE_URL": owner_url,
        "MAXLOYALTY_DATA_DIR": str(runtime.settings.data_dir),
    }
    env.pop("REDIS_URL", None)
    ok = subprocess.run(  # noqa: ASYNC221 - a real process, as an operator would run it
        [sys.executable, "-m", "maxloyalty", "ledger", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "0 mismatches" in ok.stdout
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE guest_cards SET balance = balance + 1"
                " WHERE id = (SELECT id FROM guest_cards ORDER BY id LIMIT 1)"
            )
        )
    bad = subprocess.run(  # noqa: ASYNC221
        [sys.executable, "-m", "maxloyalty", "ledger", "verify", "--tenant", "grill-house"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "1 mismatches" in bad.stdout
