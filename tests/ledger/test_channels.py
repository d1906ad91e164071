"""Who posted a ledger row (`channel`): a staff member, an API-key client, the guest, the
jobs; shown in the history and filtered by it. The tills' channels are in
tests/integrations/pos/test_channels.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.ledger.models import PointTransaction
from maxloyalty.ledger.service.daily import run_daily
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_guest
from tests.ledger.conftest import Shop, grant, post_at
from tests.test_app import assert_problem


async def channels(runtime: Runtime, shop: Shop) -> list[tuple[str, int, str]]:
    """(type, amount, channel) of every row of the network, oldest first."""
    async with runtime.db.session(shop.tenant.id) as session:
        rows = await session.scalars(
            select(PointTransaction).order_by(PointTransaction.created_at, PointTransaction.id)
        )
        return [(t.type.value, t.amount, t.channel.value) for t in rows]


async def history(shop: Shop, headers: dict[str, str], params: Any = None) -> list[Any]:
    answer = await shop.client.get(
        f"/api/guest/{shop.guest_id}/history", params=params, headers=headers
    )
    assert answer.status_code == 200, answer.text
    items: list[Any] = answer.json()["items"]
    return items


async def api_key(shop: Shop, runtime: Runtime, auth: TokenFactory) -> dict[str, str]:
    """The headers of a plain API key of the shop's restaurant (no POS integration)."""
    async with runtime.db.transaction() as session:
        person = User(role=Role.RESTAURANT_ADMIN)
        session.add(person)
    admin = await auth(Role.RESTAURANT_ADMIN, shop.tenant.id, subject=person.id)
    issued = await shop.client.post(
        "/api/api-keys",
        json={"name": "Kiosk", "restaurant_ids": [str(shop.restaurant.id)]},
        headers=admin,
    )
    assert issued.status_code == 201, issued.text
    return {"Authorization": f"Bearer {issued.json()['key']}"}


async def transfer_as_guest(
    shop: Shop, auth: TokenFactory, to_card: uuid.UUID, points: int
) -> dict[str, str]:
    """The shop's guest gives `points` to another card themselves; their headers."""
    guest = await auth(Role.GUEST, shop.tenant.id, subject=shop.guest_id)
    moved = await shop.client.post(
        f"/api/guest/{shop.guest_id}/transfer",
        json={
            "restaurant_id": str(shop.restaurant.id),
            "to_card_id": str(to_card),
            "points": points,
        },
        headers=guest | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert moved.status_code == 201, moved.text
    return guest


async def test_staff_and_api_key_operations_record_their_channels(
    make_shop: Any, runtime: Runtime, auth: TokenFactory
) -> None:
    shop: Shop = await make_shop()
    await grant(shop, 200)  # the manager's manual credit
    sale = await shop.post({"type": "REDEMPTION", "amount": 100_000, "points": 100})
    assert sale.status_code == 201, sale.text
    kiosk = await shop.client.post(
        f"/api/guest/{shop.guest_id}/transaction",
        json={"type": "SALE", "restaurant_id": str(shop.restaurant.id), "amount": 40_000},
        headers=await api_key(shop, runtime, auth) | {"Idempotency-Key": "k1"},
    )
    assert kiosk.status_code == 201, kiosk.text
    assert await channels(runtime, shop) == [
        ("MANUAL", 200, "STAFF"),
        ("REDEMPTION", -100, "STAFF"),
        ("ACCRUAL", 45, "STAFF"),
        ("ACCRUAL", 20, "POS_API"),
    ]
    # The history says so, next to the seed's `source` (POS for both sales).
    shown = [(t["type"], t["source"], t["channel"]) for t in await history(shop, shop.cashier)]
    assert shown == [
        ("ACCRUAL", "POS", "POS_API"),
        ("ACCRUAL", "POS", "STAFF"),
        ("REDEMPTION", "POS", "STAFF"),
        ("MANUAL", "MANUAL", "STAFF"),
    ]


async def test_the_guests_own_transfer_and_reward_are_guest_app(
    make_shop: Any, runtime: Runtime, auth: TokenFactory
) -> None:
    shop: Shop = await make_shop(allow_guest_transfers=True)
    friend = await make_guest(runtime, shop.system, restaurant_id=shop.restaurant.id)
    await grant(shop, 300)
    guest = await transfer_as_guest(shop, auth, friend.id, 50)
    admin = await auth(Role.RESTAURANT_ADMIN, shop.tenant.id)
    coffee = await shop.client.post(
        "/api/rewards", json={"name": "Капучино", "points_price": 150}, headers=admin
    )
    assert coffee.status_code == 201, coffee.text
    bought = await shop.client.post(
        f"/api/rewards/{coffee.json()['id']}/redeem",
        json={"restaurant_id": str(shop.restaurant.id)},
        headers=guest | {"Idempotency-Key": "r1"},
    )
    assert bought.status_code == 201, bought.text
    # Both sides of the transfer are the guest's doing, the friend's credit too.
    assert await channels(runtime, shop) == [
        ("MANUAL", 300, "STAFF"),
        ("TRANSFER", -50, "GUEST_APP"),
        ("TRANSFER", 50, "GUEST_APP"),
        ("REDEMPTION", -150, "GUEST_APP"),
    ]


async def test_expiry_is_the_systems_even_inside_a_cashiers_operation(
    make_shop: Any, runtime: Runtime
) -> None:
    shop: Shop = await make_shop(expiry_days=10)
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    await post_at(runtime, shop, start, {"type": "SALE", "amount": 200_000})  # +100
    assert (await run_daily(runtime.db, start + timedelta(days=12)))["expired"] == 1
    later = start + timedelta(days=13)
    await post_at(runtime, shop, later, {"type": "SALE", "amount": 100_000})  # +50
    # The second lot expires when the manager's next sale settles the card first.
    await post_at(runtime, shop, later + timedelta(days=12), {"type": "SALE", "amount": 20_000})
    assert await channels(runtime, shop) == [
        ("ACCRUAL", 100, "STAFF"),
        ("EXPIRATION", -100, "SYSTEM"),
        ("ACCRUAL", 50, "STAFF"),
        ("EXPIRATION", -50, "SYSTEM"),
        ("ACCRUAL", 10, "STAFF"),
    ]


async def test_history_filters_by_channel(
    make_shop: Any, runtime: Runtime, auth: TokenFactory
) -> None:
    shop: Shop = await make_shop(allow_guest_transfers=True)
    friend = await make_guest(runtime, shop.system, restaurant_id=shop.restaurant.id)
    await grant(shop, 100)
    assert (await shop.post({"type": "SALE", "amount": 20_000})).status_code == 201
    kiosk = await shop.client.post(
        f"/api/guest/{shop.guest_id}/transaction",
        json={"type": "SALE", "restaurant_id": str(shop.restaurant.id), "amount": 60_000},
        headers=await api_key(shop, runtime, auth) | {"Idempotency-Key": "k1"},
    )
    assert kiosk.status_code == 201, kiosk.text
    guest = await transfer_as_guest(shop, auth, friend.id, 7)

    def seen(items: list[Any]) -> list[tuple[str, int]]:
        return [(t["channel"], t["amount"]) for t in items]

    assert seen(await history(shop, shop.cashier, {"channel": "POS_API"})) == [("POS_API", 30)]
    both = {"channel": ["STAFF", "GUEST_APP"]}  # repeated: any of them
    assert seen(await history(shop, guest, both)) == [
        ("GUEST_APP", -7),
        ("STAFF", 10),
        ("STAFF", 100),
    ]
    # With the other filters, and with one that nothing matches.
    manual = {"channel": "STAFF", "type": "MANUAL"}
    assert seen(await history(shop, shop.cashier, manual)) == [("STAFF", 100)]
    assert await history(shop, shop.cashier, {"channel": "RKEEPER"}) == []
    # Paging keeps the filter.
    first = await shop.client.get(
        f"/api/guest/{shop.guest_id}/history",
        params={"channel": "STAFF", "limit": "1"},
        headers=shop.cashier,
    )
    cursor = first.json()["next_cursor"]
    rest = await history(shop, shop.cashier, {"channel": "STAFF", "cursor": cursor})
    assert seen(first.json()["items"] + rest) == [("STAFF", 10), ("STAFF", 100)]

    for unknown in ("TILL", "staff", "STAFF,GUEST_APP", ""):
        answer = await shop.client.get(
            f"/api/guest/{shop.guest_id}/history",
            params={"channel": unknown},
            headers=shop.cashier,
        )
        problem = assert_problem(answer, 422, "validation_error")
        (error,) = problem["errors"]  # type: ignore[misc]
        assert (error["field"], error["type"]) == ("query.channel.0", "enum")
        assert "'STAFF', 'POS_API', 'RKEEPER', 'IIKO', 'GUEST_APP' or 'SYSTEM'" in error["message"]


async def test_a_refund_is_the_channel_of_who_refunds(
    make_shop: Any, runtime: Runtime, auth: TokenFactory
) -> None:
    """A staff member's check refunded by an API-key client: the reversal is the client's."""
    shop: Shop = await make_shop()
    assert (await shop.post({"type": "SALE", "amount": 100_000, "check_number": "S-1"})).is_success
    refund = await shop.client.post(
        f"/api/guest/{shop.guest_id}/transaction",
        json={"type": "REFUND", "restaurant_id": str(shop.restaurant.id), "check_number": "S-1"},
        headers=await api_key(shop, runtime, auth) | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert refund.status_code == 201, refund.text
    assert await channels(runtime, shop) == [
        ("ACCRUAL", 50, "STAFF"),
        ("REVERSAL", -50, "POS_API"),
    ]
