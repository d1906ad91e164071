"""The command line and the demo network."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from maxloyalty import __version__
from maxloyalty.cli import app, check_pool_sizing, pool_sizing_warning
from maxloyalty.config import get_settings
from maxloyalty.demo import IIKO_DEMO_LOGIN, NETWORK, PROGRAMS, REWARDS, _load, start_block
from maxloyalty.guests.models import GuestCard
from maxloyalty.identity.models import ApiKey
from maxloyalty.identity.principal import Role
from maxloyalty.integrations.pos.models import PosIntegration, PosSystem, PosTransaction
from maxloyalty.integrations.pos.service import credentials_of
from maxloyalty.ledger.models import PointTransaction, TxChannel, TxStatus, TxType
from maxloyalty.ledger.service.verify import verify_tenant
from maxloyalty.loyalty.models import LoyaltyLevel
from maxloyalty.loyalty.service import level_for
from maxloyalty.network.models import PointOfSale, Restaurant, Tenant
from maxloyalty.rewards.models import RedemptionItem
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
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


def test_pool_sizing_keeps_a_headroom() -> None:
    # 100 connections less 3 reserved = 97, less a tenth (9): 88 for the API processes,
    # each 2 × 10 app + 4 platform + 1 worker = 25.
    server = {"max_connections": 100, "reserved": 3}
    assert pool_sizing_warning(pool_size=10, processes=3, worker=True, **server) is None
    warning = pool_sizing_warning(pool_size=10, processes=4, worker=True, **server)
    assert warning is not None
    assert "= 100, but the server leaves 88" in warning
    assert "lower MAXLOYALTY_DB_POOL_SIZE or --workers" in warning
    # Exactly the budget fits: 2 × (2 × 20 + 4) = 88.
    assert pool_sizing_warning(pool_size=20, processes=2, worker=False, **server) is None
    # A small server still keeps 5: 20 - 3 - 5 = 12 = 2 × 4 + 4, not a worker more.
    small = {"max_connections": 20, "reserved": 3}
    assert pool_sizing_warning(pool_size=4, processes=1, worker=False, **small) is None
    assert pool_sizing_warning(pool_size=4, processes=1, worker=True, **small) is not None


async def test_serve_warns_from_the_servers_own_limit(
    owner_engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    owner_url = owner_engine.url.render_as_string(hide_password=False)
    async with owner_engine.connect() as conn:
        max_connections = await conn.scalar(text("SHOW max_connections"))
    # serve's check runs its own event loop, as serve does before uvicorn starts.
    await asyncio.to_thread(check_pool_sizing, owner_url, 10, processes=1000, worker=True)
    warning = capsys.readouterr().err
    assert warning.startswith("Warning: 1000 API process(es) × 25 connections")
    assert f"(max_connections {max_connections} − " in warning
    assert warning.count("\n") == 1
    await asyncio.to_thread(check_pool_sizing, owner_url, 1, processes=1, worker=True)
    assert capsys.readouterr().err == ""


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


async def test_the_demo_has_guests_at_every_level_and_a_history_the_ledger_agrees_with(
    runtime: Runtime,
) -> None:
    data = (await _load(runtime, guests=6)).data
    for (network, _), tenant in zip(NETWORK, data["tenants"], strict=True):
        async with runtime.db.transaction(uuid.UUID(tenant["id"])) as session:
            cards = list(await session.scalars(select(GuestCard)))
            levels = list(await session.scalars(select(LoyaltyLevel).order_by("position")))
            txs = list(await session.scalars(select(PointTransaction)))
            items = {i.id: i for i in await session.scalars(select(RedemptionItem))}
            _, mismatches = await verify_tenant(session)
        assert mismatches == []
        # Six guests: one at each of the five levels and one more, in the ledger and in
        # the JSON alike.
        names = [spec.name for spec in PROGRAMS[network.slug][2]]
        assert [level.name for level in levels] == names
        name_of = {level.id: level.name for level in levels}
        assert {name_of[card.level_id] for card in cards if card.level_id} == set(names)
        assert {guest["level"] for guest in tenant["guests"]} == set(names)
        # The level follows the spend, and the spend is what the checks paid less refunds.
        paid = Counter[uuid.UUID]()
        for tx in txs:
            if tx.paid_amount is not None:
                paid[tx.card_id] += tx.paid_amount * (-1 if tx.type is TxType.REVERSAL else 1)
        for card in cards:
            assert card.lifetime_spent == paid[card.id]
            level = level_for(levels, card.lifetime_spent)
            assert level is not None
            assert level.id == card.level_id
        months = {(tx.created_at.year, tx.created_at.month) for tx in txs}
        assert len(months) >= 6  # visits over past months, not one day
        sales = [tx for tx in txs if tx.type is TxType.ACCRUAL and tx.check_amount]
        assert len(sales) > 50
        assert all(tx.status in {TxStatus.COMPLETED, TxStatus.REVERSED} for tx in sales)
        sold = Counter(tx.reward_item_id for tx in txs if tx.reward_item_id)
        if network.slug == "grill-house":
            assert any(tx.type is TxType.REDEMPTION and tx.check_number for tx in txs)
            assert sold  # rewards bought with points
            assert sum(tx.amount for tx in sales) > 0
        else:  # a DISCOUNT programme: the level's discount on every check, no points
            assert all(tx.amount == 0 and tx.discount_amount is not None for tx in sales)
            assert not items
        # Limited rewards: what the history sold is gone from the stock.
        stocks = {name: stock for name, _, stock, *_ in REWARDS[network.slug]}
        for item in items.values():
            start = stocks[item.name]
            assert item.stock == (None if start is None else start - sold[item.id])
            assert not sold[item.id] or item.is_active  # nothing withdrawn was ever sold
        assert {r["id"]: r["stock"] for r in tenant["rewards"]} == {
            str(i.id): i.stock for i in items.values()
        }


async def test_the_demo_catalogue_tills_and_pending_approval_work(
    runtime: Runtime, client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    chain = (await _load(runtime, guests=6)).data["tenants"][0]
    chain_id = uuid.UUID(chain["id"])
    staff = {s["role"]: s for s in chain["staff"]}
    admin = bearer(
        await login(
            client, staff["RESTAURANT_ADMIN"]["email"], staff["RESTAURANT_ADMIN"]["password"]
        )
    )
    catalogue = (await client.get("/api/rewards", headers=admin)).json()["items"]
    spec = REWARDS["grill-house"]
    assert sorted(r["name"] for r in catalogue) == sorted(name for name, *_ in spec)
    assert {r["id"] for r in catalogue} == {r["id"] for r in chain["rewards"]}
    assert any(r["stock"] is not None for r in catalogue)  # limited in stock
    assert any(r["active_to"] is not None for r in catalogue)  # limited in time
    # Guests see only what is on offer now: not the withdrawn reward, nor the ended offer.
    withdrawn = {name for name, _, _, _, _, active, _ in spec if not active}
    ended = {name for name, _, _, _, until, _, _ in spec if until is not None and until < 0}
    seasonal = {name for name, _, _, since, until, _, _ in spec if since and until and until > 0}
    assert len(withdrawn) == len(ended) == len(seasonal) == 1
    rich = max(chain["guests"], key=lambda g: g["balance"])
    guest = await auth(Role.GUEST, chain_id, subject=uuid.UUID(rich["id"]))
    offered = {r["name"] for r in (await client.get("/api/rewards", headers=guest)).json()["items"]}
    assert seasonal <= offered
    assert not offered & (withdrawn | ended)
    coffee = next(r for r in catalogue if r["name"] == "Капучино или чай")
    bought = await client.post(
        f"/api/rewards/{coffee['id']}/redeem",
        json={"restaurant_id": chain["restaurants"][0]["id"]},
        headers=guest | {"Idempotency-Key": "demo-coffee"},
    )
    assert bought.status_code == 201, bought.text
    assert bought.json()["balance"] == rich["balance"] - coffee["points_price"]

    async with runtime.db.transaction(chain_id) as session:
        integrations = {i.system: i for i in await session.scalars(select(PosIntegration))}
        keys = [await session.get(ApiKey, i.api_key_id) for i in integrations.values()]
        checks = Counter(await session.scalars(select(PosTransaction.integration_id)))
        channels = set(await session.scalars(select(PointTransaction.channel).distinct()))
    # The history tells the tills apart from the cashiers, the guests and the jobs.
    assert {
        TxChannel.RKEEPER,
        TxChannel.IIKO,
        TxChannel.POS_API,
        TxChannel.STAFF,
        TxChannel.GUEST_APP,
        TxChannel.SYSTEM,
    } <= channels
    assert set(integrations) == {PosSystem.RKEEPER, PosSystem.IIKO, PosSystem.CUSTOM}
    assert integrations[PosSystem.RKEEPER].external_id == "1"
    assert integrations[PosSystem.RKEEPER].settings["levels"]
    assert credentials_of(integrations[PosSystem.IIKO]) == {"api_login": IIKO_DEMO_LOGIN}
    assert all(key is not None and key.revoked_at is None for key in keys)
    assert all(checks[i.id] for i in integrations.values())  # each till posted checks
    iiko = next(t for t in chain["tills"] if t["system"] == "IIKO")
    assert iiko["webhook_token"].startswith("miw_")
    found = await client.post(
        "/api/pos/v1/identify",
        json={"code": rich["card_code"]},
        headers={"Authorization": f"Bearer {iiko['api_key']}"},
    )
    assert found.status_code == 200, found.text  # an iikoFront plugin's key, as printed

    pending = chain["pending_approvals"][0]
    async with runtime.db.transaction(chain_id) as session:
        waiting = await session.scalar(
            select(PointTransaction).where(
                PointTransaction.id == uuid.UUID(pending["transaction_id"])
            )
        )
    assert waiting is not None
    assert (waiting.type, waiting.status, waiting.amount) == (
        TxType.MANUAL,
        TxStatus.PENDING,
        pending["points"],
    )
    manager = bearer(await login(client, staff["MANAGER"]["email"], staff["MANAGER"]["password"]))
    balance = f"/api/guest/{pending['guest_id']}/balance"
    before = (await client.get(balance, headers=manager)).json()["balance"]
    approve = f"/api/transactions/{pending['transaction_id']}/approve"
    approved = await client.post(approve, headers=manager)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "COMPLETED"
    assert approved.json()["balance"] == before + pending["points"]
    again = await client.post(approve, headers=manager)
    assert again.status_code == 409
    assert again.json()["code"] == "not_pending"
    async with runtime.db.transaction(chain_id) as session:
        _, mismatches = await verify_tenant(session)
    assert mismatches == []


def _pasted(line: str, order: str) -> tuple[str, dict[str, str], dict[str, object]]:
    """A printed curl line as the shell would run it: path, headers, JSON body."""
    words = shlex.split(line.split("; ", 1)[-1].replace("$ORDER", order))
    headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
    url = next(w for w in words if w.startswith("http://"))
    return url.removeprefix("http://testserver"), headers, json.loads(words[-1])


async def test_the_start_block_says_what_to_do_and_its_calls_work(
    runtime: Runtime, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (await _load(runtime, guests=6)).data
    block = start_block(data, "http://testserver")
    assert f"{data['owner']['email']} / {data['owner']['password']}" in block
    for tenant in data["tenants"]:
        assert tenant["id"] in block
        assert all(r["id"] in block for r in tenant["restaurants"])
        assert all(f"{s['email']} / {s['password']}" in block for s in tenant["staff"])
        assert all(t["api_key"] in block for t in tenant["tills"])
        assert all(
            f"POST /api/transactions/{p['transaction_id']}/approve" in block
            for p in tenant["pending_approvals"]
        )
    assert "http://testserver/cashier" in block
    for tenant in data["tenants"]:
        phone = re.search(rf"testserver/app/{tenant['slug']} +\(phone (\+\d+);", block)
        assert phone is not None
        assert phone.group(1) in {g["phone"] for g in tenant["guests"]}
    shown = re.findall(r"guest code (\d{6})", block)
    assert len(shown) == 3 * len(data["tenants"])
    chain_levels = {g["level"] for g in data["tenants"][0]["guests"]}
    assert len(set(re.findall(r"guest code \d{6}  (\w+)", block)[:3])) == min(3, len(chain_levels))

    identify, commit = [line for line in block.splitlines() if "curl" in line]
    path, headers, body = _pasted(identify, "")
    found = await client.post(path, json=body, headers=headers)
    assert found.status_code == 200, found.text
    path, headers, body = _pasted(commit, "demo-1")
    sold = await client.post(path, json=body, headers=headers)
    assert sold.status_code == 201, sold.text
    assert sold.json()["accrued"] > 0
    again = await client.post(path, json=body, headers=headers)  # pasted twice in a second
    assert again.json() == sold.json()

    monkeypatch.setenv("MAXLOYALTY_DATA_DIR", str(runtime.settings.data_dir))
    get_settings.cache_clear()
    try:
        shown_again = CliRunner().invoke(app, ["demo", "show", "--url", "http://testserver"])
    finally:
        get_settings.cache_clear()
    assert shown_again.exit_code == 0, shown_again.output
    assert shown_again.output.strip() == block


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
