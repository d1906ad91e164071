"""Guest registration, the guest list, card QR codes."""

from __future__ import annotations

import csv
import io
from typing import Any

from maxloyalty.runtime import Runtime
from tests.ledger.conftest import Shop
from tests.test_app import assert_problem


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
