"""A card's new balance reaches its live topics once its operation commits, whichever path
posted it; an operation that rolls back publishes nothing."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from maxloyalty.guests.live import card_topic, guest_topic
from maxloyalty.guests.models import GuestCard, RegistrationSource
from maxloyalty.guests.service.cards import join_network
from maxloyalty.identity.models import User
from maxloyalty.kit.live import Message, Subscription
from maxloyalty.kit.timestamps import PATTERN
from maxloyalty.ledger.service.daily import run_daily
from maxloyalty.runtime import Runtime
from tests.factories import make_restaurant
from tests.ledger.conftest import Shop, grant, post_at


async def received(subscription: Subscription, seconds: float = 0.3) -> list[Message | None]:
    """Everything that arrives until `seconds` pass without a message."""
    got: list[Message | None] = []
    while True:
        try:
            got.append(await asyncio.wait_for(anext(subscription), seconds))
        except TimeoutError:
            return got


async def stored(runtime: Runtime, shop: Shop) -> tuple[int, int]:
    async with runtime.db.transaction(shop.tenant.id) as session:
        card = await session.get(GuestCard, shop.card.id)
        assert card is not None
        return card.balance, card.pending_balance


async def test_a_cashier_sale_publishes_the_new_balance_once_committed(
    make_shop: Any, runtime: Runtime
) -> None:
    shop: Shop = await make_shop()
    card, guest = card_topic(shop.card.id), guest_topic(shop.tenant.id, shop.guest_id)
    async with runtime.live.subscribe(card) as on_card, runtime.live.subscribe(guest) as on_guest:
        answer = await shop.post({"type": "SALE", "amount": 100_000})
        assert answer.status_code == 201, answer.text
        message = await asyncio.wait_for(anext(on_card), 2)
        # Committed by the time it is heard: another session reads the same balance.
        assert message is not None
        assert (message["balance"], message["pending_balance"]) == await stored(runtime, shop)
        assert message["balance"] == answer.json()["balance"] > 0
        assert message["card_id"] == str(shop.card.id)
        assert message["level_id"] == str(shop.card.level_id)
        assert re.fullmatch(PATTERN, message["at"])
        assert set(message) == {"card_id", "balance", "pending_balance", "level_id", "at"}
        assert await received(on_card) == []  # once
        assert await received(on_guest) == [message]


async def test_a_refused_or_rolled_back_operation_publishes_nothing(
    make_shop: Any, runtime: Runtime
) -> None:
    shop: Shop = await make_shop()
    async with runtime.live.subscribe(card_topic(shop.card.id)) as on_card:
        refused = await shop.post({"type": "REDEMPTION", "amount": 100_000, "points": 10})
        assert refused.status_code == 409, refused.text  # no points to spend

        # A sale that had written the card when its transaction failed.
        async def failing() -> None:
            async with runtime.db.transaction(shop.tenant.id) as session:
                card = await session.get(GuestCard, shop.card.id)
                assert card is not None
                card.balance += 500
                await session.flush()
                raise RuntimeError("the till went away")

        with pytest.raises(RuntimeError):
            await failing()
        assert await received(on_card) == []
        assert await stored(runtime, shop) == (0, 0)


async def test_a_card_written_twice_is_published_once_with_its_last_values(
    make_shop: Any, runtime: Runtime
) -> None:
    """As R-Keeper's check does: parts in a savepoint, a refused part undoing its own."""
    shop: Shop = await make_shop()
    async with runtime.live.subscribe(card_topic(shop.card.id)) as on_card:
        async with runtime.db.transaction(shop.tenant.id) as session:
            card = await session.get(GuestCard, shop.card.id)
            assert card is not None
            card.balance += 10
            await session.flush()
            async with session.begin_nested():
                card.pending_balance += 5
                await session.flush()

            async def refused(card: GuestCard) -> None:
                async with session.begin_nested():
                    card.balance += 1000
                    await session.flush()
                    raise RuntimeError("refused")

            with pytest.raises(RuntimeError):
                await refused(card)
            assert await received(on_card, 0.1) == []  # nothing before the commit
        [message] = await received(on_card)
    assert message is not None
    assert (message["balance"], message["pending_balance"]) == (10, 5)
    assert await stored(runtime, shop) == (10, 5)


async def test_the_daily_job_publishes_expired_and_activated_points(
    make_shop: Any, runtime: Runtime
) -> None:
    shop: Shop = await make_shop(pending_days=1, expiry_days=10)
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    sale = await post_at(runtime, shop, start, {"type": "SALE", "amount": 100_000})
    assert (sale["balance"], sale["pending_balance"]) == (0, 50)
    async with runtime.live.subscribe(card_topic(shop.card.id)) as on_card:
        assert (await run_daily(runtime.db, start + timedelta(days=2)))["activated"] == 1
        [activated] = await received(on_card)
        assert activated is not None
        assert (activated["balance"], activated["pending_balance"]) == (50, 0)
        assert (await run_daily(runtime.db, start + timedelta(days=13)))["expired"] == 1
        [expired] = await received(on_card)
        assert expired is not None
        assert (expired["balance"], expired["pending_balance"]) == (0, 0)


async def test_a_transfer_publishes_both_cards_once(make_shop: Any, runtime: Runtime) -> None:
    shop: Shop = await make_shop(mode="SEPARATE")
    second = await make_restaurant(runtime, shop.tenant)
    async with runtime.db.transaction(shop.tenant.id) as session:
        guest = await session.get(User, shop.guest_id)
        assert guest is not None
        other = await join_network(session, shop.system, guest, RegistrationSource.POS, second.id)
        shop.card = await join_network(
            session, shop.system, guest, RegistrationSource.POS, shop.restaurant.id
        )
    await grant(shop, 100)
    topics = (card_topic(shop.card.id), card_topic(other.id))
    async with (
        runtime.live.subscribe(*topics) as on_cards,
        runtime.live.subscribe(guest_topic(shop.tenant.id, shop.guest_id)) as on_guest,
    ):
        moved = await shop.client.post(
            f"/api/guest/{shop.guest_id}/transfer",
            json={
                "restaurant_id": str(shop.restaurant.id),
                "to_card_id": str(other.id),
                "points": 60,
            },
            headers=shop.cashier | {"Idempotency-Key": uuid.uuid4().hex},
        )
        assert moved.status_code == 201, moved.text
        got = await received(on_cards)
        on_both = await received(on_guest)
    balances = sorted((m["card_id"], m["balance"]) for m in got if m is not None)
    assert balances == sorted([(str(shop.card.id), 40), (str(other.id), 60)])
    assert len(got) == 2
    assert sorted(on_both, key=str) == sorted(got, key=str)  # the guest's page hears both
