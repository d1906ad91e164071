"""Identification at the till: by QR payload, 6-digit code or phone, and its rate limit."""

from __future__ import annotations

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
