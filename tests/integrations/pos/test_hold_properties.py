"""Property: whatever a till and a cashier do to one card — holds for several orders,
cancels, commits, manual debits and credits, minutes passing so holds run out — the points
free to spend are always the balance less the live holds, a spend never takes another
order's held points, and the ledger's invariants hold after every step."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maxloyalty.guests.service.cards import lock_card
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.integrations.pos import orders, service
from maxloyalty.integrations.pos.schemas import CommitRequest, HoldRequest
from maxloyalty.kit.errors import AppError
from maxloyalty.ledger.service import core
from maxloyalty.runtime import Runtime
from tests.integrations.pos.conftest import Till, TillFactory
from tests.ledger.conftest import assert_ledger_consistent, post_at

TTL = timedelta(minutes=10)
ORDERS = ["o0", "o1", "o2", "o3", "o4"]
hold = st.tuples(st.just("HOLD"), st.sampled_from(ORDERS), st.integers(1, 300))
debit = st.tuples(st.just("DEBIT"), st.just(""), st.integers(1, 300))
step = st.one_of(
    hold,
    hold,  # holds and debits twice as often: their meeting is what this is about
    debit,
    debit,
    st.tuples(st.just("CANCEL"), st.sampled_from(ORDERS), st.just(0)),
    st.tuples(st.just("COMMIT"), st.sampled_from(ORDERS), st.integers(0, 1)),
    st.tuples(st.just("CREDIT"), st.just(""), st.integers(1, 200)),
    st.tuples(st.just("WAIT"), st.just(""), st.integers(1, 12)),  # minutes
)


async def _run(runtime: Runtime, till: Till, now: datetime, kind: str, order: str, n: int) -> None:
    caller = Principal(
        subject=uuid.UUID(till.integration["api_key_id"]),
        role=Role.SYSTEM,
        tenant_id=till.shop.tenant.id,
        restaurant_ids=frozenset({till.shop.restaurant.id}),
    )
    async with runtime.db.transaction(till.shop.tenant.id) as session:
        integration, ctx = await service.till_context(session, caller, now)
        key = uuid.uuid4().hex
        if kind == "HOLD":
            body = HoldRequest(
                card_id=till.shop.card.id,
                points=n,
                check_amount=10**5,
                ttl_seconds=int(TTL.total_seconds()),
            )
            await orders.hold(ctx, integration, order, body, key)
        elif kind == "CANCEL":
            await orders.cancel(session, integration, order, now)
        elif kind == "COMMIT":
            # n: spend what the order holds (or nothing, if it holds nothing), or spend none.
            commit = CommitRequest(card_id=till.shop.card.id, amount=10**5, points=None if n else 0)
            await orders.commit(ctx, integration, order, commit, key)


@settings(
    max_examples=80,
    derandomize=True,  # the same sequences on every run: CI is not a lottery
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=14))
async def test_held_points_are_never_spent_twice(
    make_till: TillFactory, runtime: Runtime, steps: list[tuple[str, str, int]]
) -> None:
    till = await make_till()
    unlimited = await till.shop.client.patch(  # spend limits aside: this is about holds
        f"/api/loyalty/programs/{till.shop.system.id}",
        json={"max_redeem_percent": "100"},
        headers=till.admin,
    )
    assert unlimited.status_code == 200, unlimited.text
    now = datetime.now(UTC)
    await post_at(runtime, till.shop, now, {"type": "MANUAL", "points": 300, "reason": "p"})
    refusals: list[int] = []
    for kind, order, n in steps:
        now += timedelta(seconds=30)
        try:
            if kind == "WAIT":
                now += timedelta(minutes=n)
            elif kind in {"DEBIT", "CREDIT"}:
                points = -n if kind == "DEBIT" else n
                request: dict[str, Any] = {"type": "MANUAL", "points": points, "reason": "p"}
                await post_at(runtime, till.shop, now, request)
            else:
                await _run(runtime, till, now, kind, order, n)
        except AppError as refused:  # refusals (no points, posted order) change nothing
            refusals.append(refused.status)
        async with runtime.db.transaction(till.shop.tenant.id) as session:
            card = await lock_card(session, till.shop.card.id)
            held = await core.held_points(session, card.id, now)
            free = await core.available(session, card, now)
        assert held <= card.balance  # nothing let a spend into held points
        assert free == card.balance - held
        await assert_ledger_consistent(runtime, till.shop)
    assert set(refusals) <= {404, 409, 422}
