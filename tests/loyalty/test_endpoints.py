"""Programme configuration: creation, settings, and level edits that re-evaluate cards."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from maxloyalty.identity.principal import Role
from maxloyalty.loyalty.models import TierChange, TierChangeReason
from maxloyalty.runtime import Runtime
from maxloyalty.worker import run_worker
from tests.conftest import TokenFactory
from tests.factories import make_restaurant, make_tenant
from tests.ledger.conftest import Shop
from tests.test_app import assert_problem


async def test_program_lifecycle(client: Any, runtime: Runtime, auth: TokenFactory) -> None:
    tenant = await make_tenant(runtime)
    await make_restaurant(runtime, tenant)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    created = await client.post(
        "/api/loyalty/programs",
        json={"type": "POINTS", "mode": "UNIFIED", "design": {"background": "#112233"}},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    program = created.json()
    assert [lv["name"] for lv in program["levels"]] == [
        "BRONZE",
        "SILVER",
        "GOLD",
        "PLATINUM",
        "VIP",
    ]
    assert [lv["percentage"] for lv in program["levels"]] == [
        "5.00",
        "10.00",
        "15.00",
        "20.00",
        "25.00",
    ]
    assert program["expiry_days"] == 180
    assert program["design"] == {
        "template": "classic",
        "background": "#112233",
        "foreground": "#ffffff",
        "accent": "#1f6feb",
    }
    duplicate = await client.post("/api/loyalty/programs", json={"type": "DISCOUNT"}, headers=admin)
    assert_problem(duplicate, 409, "program_exists")
    patched = await client.patch(
        f"/api/loyalty/programs/{program['id']}",
        json={"expiry_days": 90, "max_redeem_percent": "30"},
        headers=admin,
    )
    assert (patched.json()["expiry_days"], patched.json()["max_redeem_percent"]) == (90, "30.00")
    bad = await client.put(
        f"/api/loyalty/programs/{program['id']}/levels",
        json=[{"name": "A", "min_spent": 100, "percentage": "5"}],
        headers=admin,
    )
    assert_problem(bad, 422, "invalid_levels")


async def test_editing_levels_reevaluates_cards(
    make_shop: Any, runtime: Runtime, auth: TokenFactory
) -> None:
    shop: Shop = await make_shop()
    await shop.post({"type": "SALE", "amount": 500_000})  # 5 000 ₽: BRONZE
    admin = await auth(Role.RESTAURANT_ADMIN, shop.tenant.id)
    levels = [
        {"name": "BRONZE", "min_spent": 0, "percentage": "5"},
        {"name": "FRIEND", "min_spent": 400_000, "percentage": "7"},
        {"name": "SILVER", "min_spent": 3_000_000, "percentage": "10"},
    ]
    answer = await shop.client.put(
        f"/api/loyalty/programs/{shop.system.id}/levels", json=levels, headers=admin
    )
    assert answer.status_code == 200, answer.text
    assert [lv["name"] for lv in answer.json()["levels"]] == ["BRONZE", "FRIEND", "SILVER"]
    await asyncio.wait_for(run_worker(runtime, asyncio.Event(), drain=True), timeout=30)
    balance = await shop.balance()
    assert balance["level"]["name"] == "FRIEND"  # type: ignore[index]
    async with runtime.db.transaction(shop.tenant.id) as session:
        reasons = list(await session.scalars(select(TierChange.reason)))
    assert reasons == [TierChangeReason.LEVELS_EDITED]
    # The next check earns at the new level.
    assert (await shop.post({"type": "SALE", "amount": 100_000})).json()["accrued"] == 70


async def test_patch_null_clears_only_optional_settings(
    client: Any, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    created = await client.post(
        "/api/loyalty/programs",
        json={"type": "POINTS", "discount_cap_percent": "10", "rolling_days": 90},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    url = f"/api/loyalty/programs/{created.json()['id']}"
    cleared = await client.patch(
        url, json={"discount_cap_percent": None, "rolling_days": None}, headers=admin
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["discount_cap_percent"], cleared.json()["rolling_days"]) == (None, None)
    assert_problem(
        await client.patch(url, json={"expiry_days": None}, headers=admin), 422, "validation_error"
    )
    assert (await client.get("/api/loyalty/programs", headers=admin)).json()["items"][0][
        "expiry_days"
    ] == 180


async def test_card_design_takes_hex_colours_and_known_templates_only(
    client: Any, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    for design in (
        {"background": "red"},
        {"accent": "#12345"},
        {"template": "neon"},
        {"logo_url": "https://example.com/logo.png"},
    ):
        refused = await client.post(
            "/api/loyalty/programs",
            json={"type": "POINTS", "design": design},
            headers=admin,
        )
        assert_problem(refused, 422, "validation_error")
    listed = await client.get("/api/loyalty/programs", headers=admin)
    assert listed.json()["items"] == []
