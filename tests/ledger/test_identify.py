"""Identification at the till: by QR payload (static or rotating), 6-digit code (static or
rotating) or phone, the programme's demand for rotating codes, and the rate limit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import time_machine
from sqlalchemy import event

from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
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


async def _rotating(shop: Shop, auth: TokenFactory) -> dict[str, Any]:
    guest = await auth(Role.GUEST, shop.tenant.id, subject=shop.guest_id)
    answer = await shop.client.get(f"/api/cards/{shop.card.id}/rotating-code", headers=guest)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


async def test_a_programme_requiring_rotating_codes_refuses_the_static_ones(
    make_shop: Any, runtime: Runtime, auth: TokenFactory, in_a_window: datetime
) -> None:
    shop: Shop = await make_shop()
    admin = await auth(Role.RESTAURANT_ADMIN, shop.tenant.id)
    patched = await shop.client.patch(
        f"/api/loyalty/programs/{shop.system.id}",
        json={"require_rotating_code": True},
        headers=admin,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["require_rotating_code"] is True
    static_qr = runtime.qr.payload(shop.tenant.id, shop.card.id)
    assert_problem(await identify(shop, code=shop.card.code), 422, "rotating_code_required")
    assert_problem(await identify(shop, qr=static_qr), 422, "rotating_code_required")
    # A forged static QR is still just invalid; the phone still finds the guest.
    assert_problem(await identify(shop, qr=static_qr[:-2] + "AA"), 422, "invalid_qr")
    async with runtime.db.transaction(shop.tenant.id) as session:
        user = await session.get(User, shop.guest_id)
    assert user is not None
    assert user.phone is not None
    assert (await identify(shop, phone=user.phone)).json()["card_id"] == str(shop.card.id)

    rotating = await _rotating(shop, auth)
    for by in ({"code": rotating["code"]}, {"qr": rotating["qr"]}):
        answer = await identify(shop, **by)
        assert answer.status_code == 200, answer.text
        assert answer.json()["card_id"] == str(shop.card.id)
    with time_machine.travel(in_a_window + timedelta(seconds=55), tick=False):
        assert_problem(await identify(shop, code=rotating["code"]), 404, "card_not_found")
        assert_problem(await identify(shop, qr=rotating["qr"]), 422, "qr_expired")

    # Switched off again, the static code works as before.
    await shop.client.patch(
        f"/api/loyalty/programs/{shop.system.id}",
        json={"require_rotating_code": False},
        headers=admin,
    )
    assert (await identify(shop, code=shop.card.code)).status_code == 200


async def test_a_rotating_code_costs_one_query_and_a_static_one_none(
    make_shop: Any, runtime: Runtime, auth: TokenFactory, in_a_window: datetime
) -> None:
    shop: Shop = await make_shop()
    rotating = await _rotating(shop, auth)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert (await identify(shop, code=shop.card.code)).status_code == 200
        by_static = [s for s in statements if "card_rotating_codes" in s]
        statements.clear()
        assert (await identify(shop, code=rotating["code"])).status_code == 200
        by_rotating = [s for s in statements if "card_rotating_codes" in s]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert by_static == []
    assert len(by_rotating) == 1


async def test_another_networks_rotating_code_or_qr_finds_nothing(
    make_shop: Any, runtime: Runtime, auth: TokenFactory, in_a_window: datetime
) -> None:
    shop: Shop = await make_shop()
    other: Shop = await make_shop()
    theirs = await _rotating(other, auth)
    if theirs["code"] != shop.card.code:  # a static code of ours would find our card
        assert_problem(await identify(shop, code=theirs["code"]), 404, "card_not_found")
    assert_problem(await identify(shop, qr=theirs["qr"]), 422, "invalid_qr")
