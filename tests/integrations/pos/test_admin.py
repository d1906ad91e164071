"""Tenant admins manage till integrations; secrets are shown once and rotate cleanly."""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_restaurant
from tests.integrations.pos.conftest import TillFactory
from tests.signing import ml_signature


async def test_secrets_are_shown_once_and_stored_encrypted(
    make_till: TillFactory, owner_engine: AsyncEngine
) -> None:
    till = await make_till(
        "IIKO", credentials={"api_login": "very-secret-login"}, require_signature=True
    )
    created = till.integration
    assert created["api_key"].startswith("mlk_")
    assert created["signing_secret"]
    assert created["webhook_token"].startswith("miw_")
    assert created["has_credentials"] is True
    shown = await till.client.get(f"/api/pos/integrations/{created['id']}", headers=till.admin)
    assert shown.status_code == 200
    for secret in ("api_key", "signing_secret", "webhook_token", "credentials"):
        assert secret not in shown.json()
    async with owner_engine.connect() as conn:
        raw = (
            await conn.execute(
                text("SELECT credentials, webhook_secret FROM pos_integrations WHERE id = :id"),
                {"id": created["id"]},
            )
        ).one()
    assert "very-secret-login" not in raw.credentials
    assert created["webhook_token"] not in raw.webhook_secret


async def test_roles_and_tenants(make_till: TillFactory) -> None:
    till = await make_till()
    path = f"/api/pos/integrations/{till.integration['id']}"
    manager = till.shop.manager
    assert (await till.client.get(path, headers=manager)).status_code == 200
    assert (await till.client.get(f"{path}/transactions", headers=manager)).status_code == 200
    patched = await till.client.patch(path, json={"name": "X"}, headers=manager)
    assert patched.status_code == 403
    stranger = await make_till()
    assert (await till.client.get(path, headers=stranger.admin)).status_code == 404
    cashier = await till.client.get(path, headers=till.shop.cashier)
    assert cashier.status_code == 403
    # A till's own key may not read the integrations.
    answer = await till.client.get("/api/pos/integrations", headers=till.headers)
    assert answer.status_code == 403


async def test_a_manager_sees_only_their_restaurants_tills(
    make_till: TillFactory, runtime: Runtime, auth: TokenFactory
) -> None:
    till = await make_till()
    elsewhere = await make_restaurant(runtime, till.shop.tenant)
    hidden = await till.client.post(
        "/api/pos/integrations",
        json={"restaurant_id": str(elsewhere.id), "system": "CUSTOM", "name": "Other"},
        headers=till.admin,
    )
    assert hidden.status_code == 201
    seen = await till.client.get("/api/pos/integrations", headers=till.shop.manager)
    assert [i["id"] for i in seen.json()["items"]] == [till.integration["id"]]
    path = f"/api/pos/integrations/{hidden.json()['id']}"
    assert (await till.client.get(path, headers=till.shop.manager)).status_code == 404
    events = await till.client.get(f"{path}/events", headers=till.shop.manager)
    assert events.status_code == 404
    everything = await till.client.get("/api/pos/integrations", headers=till.admin)
    assert len(everything.json()["items"]) == 2
    one_page = await till.client.get("/api/pos/integrations?limit=1", headers=till.admin)
    assert len(one_page.json()["items"]) == 1
    cursor = one_page.json()["next_cursor"]
    rest = await till.client.get(f"/api/pos/integrations?cursor={cursor}", headers=till.admin)
    assert {i["id"] for i in one_page.json()["items"] + rest.json()["items"]} == {
        i["id"] for i in everything.json()["items"]
    }
    here = await till.client.get(
        f"/api/pos/integrations?restaurant_id={elsewhere.id}", headers=till.admin
    )
    assert [i["id"] for i in here.json()["items"]] == [hidden.json()["id"]]


async def test_the_logs_page_newest_first_and_filter(make_till: TillFactory) -> None:
    till = await make_till("RKEEPER", external_id="7")
    await till.credit(10)
    card = int(till.shop.card.code)
    for check in range(1, 4):
        body = (
            f'<ROOT><Transactions><TransactionsEx Card="{card}" Kind="3" Summa="10000" '
            f'Restaurant="7" RKDate="46347" RKUni="1" RKCheck="{check}"/></Transactions></ROOT>'
        )
        posted = await till.client.post(
            "/api/pos/rkeeper/TransactionsEx", content=body.encode(), headers=till.headers
        )
        assert b'Result="0"' in posted.content, posted.text
    refused = (
        '<ROOT><Transactions><TransactionsEx Card="999999" Kind="3" Summa="10000" '
        'Restaurant="7" RKDate="46347" RKUni="1" RKCheck="9"/></Transactions></ROOT>'
    )
    answer = await till.client.post(
        "/api/pos/rkeeper/TransactionsEx", content=refused.encode(), headers=till.headers
    )
    assert b'Result="1"' in answer.content
    path = f"/api/pos/integrations/{till.integration['id']}/transactions"
    first = (await till.client.get(f"{path}?limit=3", headers=till.admin)).json()
    second = (
        await till.client.get(f"{path}?limit=3&cursor={first['next_cursor']}", headers=till.admin)
    ).json()
    orders = [t["status"] for t in first["items"] + second["items"]]
    assert orders == ["FAILED", "PROCESSED", "PROCESSED", "PROCESSED"]  # newest first
    assert second["next_cursor"] is None
    failed = (await till.client.get(f"{path}?status=FAILED", headers=till.admin)).json()
    assert [t["status"] for t in failed["items"]] == ["FAILED"]
    bad = await till.client.get(f"{path}?status=LOST", headers=till.admin)
    assert bad.status_code == 422
    nul = await till.client.get(f"{path}?order_id=%00", headers=till.admin)
    assert (nul.status_code, nul.json()["code"]) == (422, "invalid_value")


async def test_rotation_retires_the_old_key_at_once(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await make_till()
    await till.credit(10)
    body = {"code": till.shop.card.code}
    assert (await till.call("/identify", body)).status_code == 200  # now cached
    rotated = await till.client.post(
        f"/api/pos/integrations/{till.integration['id']}/rotate-secrets",
        json={},
        headers=till.admin,
    )
    assert rotated.status_code == 200
    old = await till.call("/identify", body)
    assert (old.status_code, old.json()["code"]) == (401, "api_key_revoked")
    till.integration = rotated.json()
    assert (await till.call("/identify", body)).status_code == 200


async def test_bad_settings_are_refused(make_till: TillFactory) -> None:
    till = await make_till()
    for body in [
        {"restaurant_id": str(till.shop.restaurant.id), "system": "SQUARE", "name": "x"},
        {"restaurant_id": str(till.shop.restaurant.id), "system": "RKEEPER", "name": ""},
        {
            "restaurant_id": str(till.shop.restaurant.id),
            "system": "RKEEPER",
            "name": "x",
            "settings": {"levels": {"GOLD": {"bonus": -1}}},
        },
        {
            "restaurant_id": str(till.shop.restaurant.id),
            "system": "IIKO",
            "name": "x",
            "settings": {"terminal_group_id": "hall-1"},  # iiko's ids are UUIDs
        },
    ]:
        answer = await till.client.post("/api/pos/integrations", json=body, headers=till.admin)
        assert answer.status_code == 422, body
    group = "0A6A1E2C-7F6B-4F55-9D2B-6D1B2A7C9E01"
    path = f"/api/pos/integrations/{till.integration['id']}"
    patched = await till.client.patch(
        path, json={"settings": {"terminal_group_id": group}}, headers=till.admin
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["settings"] == {"terminal_group_id": group.lower()}
    # Settings merge: naming one leaves the others; null removes one.
    levels = {"GOLD": {"bonus": 2, "discount": 3}}
    patched = await till.client.patch(
        path, json={"settings": {"levels": levels}}, headers=till.admin
    )
    assert patched.json()["settings"] == {"levels": levels, "terminal_group_id": group.lower()}
    for name in ("terminal_group_id", "levels"):
        patched = await till.client.patch(path, json={"settings": {name: None}}, headers=till.admin)
        assert patched.status_code == 200, patched.text
    assert patched.json()["settings"] == {}
    foreign = await till.client.post(
        "/api/pos/integrations",
        json={"restaurant_id": str(till.integration["id"]), "system": "CUSTOM", "name": "x"},
        headers=till.admin,
    )
    assert (foreign.status_code, foreign.json()["code"]) == (404, "restaurant_not_found")


async def test_a_signing_integration_refuses_unsigned_till_calls(make_till: TillFactory) -> None:
    till = await make_till("RKEEPER", require_signature=True)
    await till.credit(30)
    body = f'<ROOT><QRY Card="{int(till.shop.card.code)}"/></ROOT>'.encode()
    path = "/api/pos/rkeeper/GetCardInfoEx"
    unsigned = await till.client.post(path, content=body, headers=till.headers)
    assert (unsigned.status_code, unsigned.json()["code"]) == (401, "invalid_signature")
    now = str(int(time.time()))
    signature = ml_signature(till.integration["signing_secret"], now, "POST", path, body)
    headers = till.headers | {"X-ML-Timestamp": now, "X-ML-Signature": signature}
    signed = await till.client.post(path, content=body, headers=headers)
    assert signed.status_code == 200, signed.text
    assert b'Summa="3000"' in signed.content
    tampered = await till.client.post(path, content=body.replace(b"QRY", b"qry"), headers=headers)
    assert tampered.status_code == 401
    rotated = await till.client.post(
        f"/api/pos/integrations/{till.integration['id']}/rotate-secrets",
        json={},
        headers=till.admin,
    )
    assert rotated.json()["signing_secret"]  # a rotation keeps requests signed


async def test_a_switched_off_integration_rotates_into_a_paused_key(make_till: TillFactory) -> None:
    till = await make_till()
    path = f"/api/pos/integrations/{till.integration['id']}"
    off = await till.client.patch(path, json={"is_active": False}, headers=till.admin)
    assert off.status_code == 200
    rotated = await till.client.post(f"{path}/rotate-secrets", json={}, headers=till.admin)
    till.integration = rotated.json()
    refused = await till.call("/identify", {"code": till.shop.card.code})
    assert (refused.status_code, refused.json()["code"]) == (401, "api_key_suspended")
    assert (await till.client.patch(path, json={"is_active": True}, headers=till.admin)).is_success
    assert (await till.call("/identify", {"code": till.shop.card.code})).status_code == 200
