"""Identification at the till, guest registration, the guest list, card QR codes."""

from __future__ import annotations

import csv
import io
from typing import Any

from maxloyalty.identity.models import User
from maxloyalty.runtime import Runtime
from tests.ledger.conftest import Shop
from tests.test_app import assert_problem


async def identify(shop: Shop, **by: object) -> Any:
    return await shop.client.post(
        "/api/cards/identify",
        json={"restaurant_id": str(shop.restaurant.id)} | by,
        headers=shop.cashier,
    )


async def test_identify_by_code_qr_and_phone(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    await shop.post({"type": "MANUAL", "points": 40, "reason": "welcome"})
    by_code = await identify(shop, code=shop.card.code, check_amount=10_000)
    assert by_code.status_code == 200, by_code.text
    body = by_code.json()
    assert body["guest_id"] == str(shop.guest_id)
    assert body["balance"] == 40
    assert body["level"]["name"] == "BRONZE"
    assert body["max_redeemable"] == 40  # 50% of 100 ₽ would allow 50: the balance caps it

    qr = runtime.qr.payload(shop.tenant.id, shop.card.id)
    assert (await identify(shop, qr=qr)).json()["card_id"] == str(shop.card.id)
    async with runtime.db.transaction(shop.tenant.id) as session:
        user = await session.get(User, shop.guest_id)
    assert user is not None
    assert user.phone is not None
    assert (await identify(shop, phone=user.phone)).json()["card_id"] == str(shop.card.id)


async def test_forged_or_foreign_qr_is_refused(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    other: Shop = await make_shop()
    genuine = runtime.qr.payload(shop.tenant.id, shop.card.id)
    prefix, _, tag = genuine.split(".")
    altered = f"{prefix}.{other.card.id.bytes.hex()}.{tag}"
    for payload in (altered, genuine[:-2] + "AA", "ML1.garbage", "not a qr"):
        assert_problem(await identify(shop, qr=payload), 422, "invalid_qr")
    # A genuine card of another network is not valid here either.
    foreign = runtime.qr.payload(other.tenant.id, other.card.id)
    assert_problem(await identify(shop, qr=foreign), 422, "invalid_qr")
    assert_problem(await identify(shop, code="000000"), 404, "card_not_found")
    assert_problem(await identify(shop, code="12345"), 422, "validation_error")
    assert_problem(await identify(shop, code=shop.card.code, qr=genuine), 422, "validation_error")


async def test_identify_is_rate_limited(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    statuses = [(await identify(shop, code=f"{i:06d}")).status_code for i in range(61)]
    assert statuses[:60].count(429) == 0
    assert statuses[60] == 429


async def test_register_guest_at_the_till(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    body = {
        "phone": "8 (916) 555-12-34",
        "restaurant_id": str(shop.restaurant.id),
        "first_name": "Анна",
        "birth_date": "1990-05-17",
    }
    first = await shop.client.post("/api/guests", json=body, headers=shop.cashier)
    assert first.status_code == 201, first.text
    again = await shop.client.post("/api/guests", json=body, headers=shop.cashier)
    assert again.json() == first.json()  # the same person keeps the same card
    assert len(first.json()["code"]) == 6
    listed = await shop.client.get(
        f"/api/restaurants/{shop.restaurant.id}/guests", params={"q": "Анна"}, headers=shop.manager
    )
    assert [g["first_name"] for g in listed.json()["items"]] == ["Анна"]
    by_phone = await shop.client.get(
        f"/api/restaurants/{shop.restaurant.id}/guests",
        params={"q": "+79165551234"},
        headers=shop.manager,
    )
    assert [g["card_id"] for g in by_phone.json()["items"]] == [first.json()["card_id"]]


async def test_guest_list_pages_and_csv(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    for i in range(4):
        answer = await shop.client.post(
            "/api/guests",
            json={"phone": f"+7926000000{i}", "restaurant_id": str(shop.restaurant.id)},
            headers=shop.cashier,
        )
        assert answer.status_code == 201
    url = f"/api/restaurants/{shop.restaurant.id}/guests"
    page = (await shop.client.get(url, params={"limit": 3}, headers=shop.manager)).json()
    assert len(page["items"]) == 3
    rest = (
        await shop.client.get(
            url, params={"limit": 3, "cursor": page["next_cursor"]}, headers=shop.manager
        )
    ).json()
    assert len(rest["items"]) == 2
    assert rest["next_cursor"] is None
    exported = await shop.client.get(url, params={"format": "csv"}, headers=shop.manager)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 5
    assert {r["level"] for r in rows} == {"BRONZE"}
    assert_problem(await shop.client.get(url, headers=shop.cashier), 403, "role_forbidden")


async def test_card_qr_svg(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop()
    answer = await shop.client.get(f"/api/cards/{shop.card.id}/qr.svg", headers=shop.cashier)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    assert answer.text.lstrip().startswith("<?xml") or "<svg" in answer.text
