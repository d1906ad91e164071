"""Live updates: topics reach their own subscribers only, across processes through Redis;
queues stay bounded; a dropped connection comes back as a gap; staged messages go out on
commit only."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as redis
from sqlalchemy import text

from maxloyalty.kit.live import (
    Broker,
    MemoryBroker,
    Message,
    RedisBroker,
    Subscription,
    broker_from_url,
    publish_after_commit,
)
from maxloyalty.runtime import Runtime

REDIS_URL = os.environ.get("REDIS_URL")
backends = ["memory"] + (["redis"] if REDIS_URL else [])
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL is not set")


def _prefix() -> str:
    return f"mltest-{uuid.uuid4().hex[:8]}:live:"


@asynccontextmanager
async def brokers(kind: str, max_queued: int = 100) -> AsyncIterator[tuple[Broker, Broker]]:
    """Two brokers sharing one fan-out: two processes on one Redis, or one memory broker
    seen twice (a single process)."""
    if kind == "memory":
        memory = MemoryBroker(max_queued=max_queued)
        yield memory, memory
        await memory.close()
        return
    assert REDIS_URL
    prefix = _prefix()
    one = RedisBroker(REDIS_URL, prefix, max_queued=max_queued)
    two = RedisBroker(REDIS_URL, prefix, max_queued=max_queued)
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


async def next_message(subscription: Subscription, seconds: float = 2) -> Message | None:
    return await asyncio.wait_for(anext(subscription), seconds)


async def nothing_within(subscription: Subscription, seconds: float = 0.2) -> bool:
    try:
        await asyncio.wait_for(anext(subscription), seconds)
    except TimeoutError:
        return True
    return False


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 3) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.mark.parametrize("kind", backends)
async def test_a_topic_reaches_its_subscribers_only(kind: str) -> None:
    card = uuid.uuid4()
    async with (
        brokers(kind) as (here, there),
        there.subscribe("card:a") as a,
        there.subscribe("card:a", "guest:x") as both,
        there.subscribe("card:b") as b,
    ):
        await here.publish("card:a", {"card_id": card, "balance": 5})
        here.publish_soon("guest:x", {"n": 2})
        assert await next_message(a) == {"card_id": str(card), "balance": 5}
        assert await next_message(both) == {"card_id": str(card), "balance": 5}
        assert await next_message(both) == {"n": 2}
        assert await nothing_within(b)
        assert await nothing_within(a)


@pytest.mark.parametrize("kind", backends)
async def test_publish_soon_keeps_the_order(kind: str) -> None:
    async with brokers(kind) as (here, there), there.subscribe("t") as listening:
        for n in range(30):
            here.publish_soon("t", {"n": n})
        assert [await next_message(listening) for _ in range(30)] == [{"n": n} for n in range(30)]


@pytest.mark.parametrize("kind", backends)
async def test_a_slow_subscriber_keeps_a_bounded_queue_and_hears_a_gap(kind: str) -> None:
    async with (
        brokers(kind, max_queued=5) as (here, there),
        there.subscribe("t") as slow,
        there.subscribe("t") as keeping_up,
    ):
        for n in range(50):
            here.publish_soon("t", {"n": n})
            assert await next_message(keeping_up) == {"n": n}
        # Full at 5: the sixth message replaced the five with a gap, and so on.
        assert slow.dropped == 45
        assert len(slow._queue) == 5
        assert await next_message(slow) is None
        assert [await next_message(slow) for _ in range(5)] == [{"n": n} for n in range(45, 50)]
        assert await nothing_within(slow)


@pytest.mark.parametrize("kind", backends)
async def test_waiting_may_time_out_without_losing_a_message(kind: str) -> None:
    async with brokers(kind) as (here, there), there.subscribe("t") as listening:
        assert await nothing_within(listening, 0.05)
        await here.publish("t", {"n": 1})
        assert await next_message(listening) == {"n": 1}


@pytest.mark.parametrize("kind", backends)
async def test_closing_ends_every_subscription(kind: str) -> None:
    broker = broker_from_url(REDIS_URL if kind == "redis" else None, f"mltest-{uuid.uuid4().hex}")
    async with broker.subscribe("t") as listening:
        await broker.close()
        assert [m async for m in listening] == []


async def test_without_redis_the_broker_is_the_process_memory() -> None:
    broker = broker_from_url(None, "ml")
    assert isinstance(broker, MemoryBroker)
    if REDIS_URL:
        on_redis = broker_from_url(REDIS_URL, "ml-x")
        assert isinstance(on_redis, RedisBroker)
        assert on_redis.prefix == "ml-x:live:"
        await on_redis.close()


@needs_redis
async def test_a_subscription_leaves_nothing_subscribed_on_redis() -> None:
    assert REDIS_URL
    broker, observer = RedisBroker(REDIS_URL, _prefix()), redis.Redis.from_url(REDIS_URL)

    async def subscribers(topic: str) -> int:
        [(_channel, count)] = await observer.pubsub_numsub(broker.prefix + topic)
        return int(count)

    try:
        async with broker.subscribe("a", "b"), broker.subscribe("a"):
            assert (await subscribers("a"), await subscribers("b")) == (1, 1)  # one connection
        assert await eventually(lambda: _none_left(subscribers, "a", "b"))
        # Leaving by cancellation (a browser gone mid-wait) cleans up as well.
        entered = asyncio.Event()

        async def listen() -> None:
            async with broker.subscribe("c") as listening:
                entered.set()
                await anext(listening)

        task = asyncio.create_task(listen())
        await entered.wait()
        assert await subscribers("c") == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await eventually(lambda: _none_left(subscribers, "c"))
    finally:
        await broker.close()
        await observer.aclose()


async def _none_left(subscribers: Callable[[str], Awaitable[int]], *topics: str) -> bool:
    return all([await subscribers(topic) == 0 for topic in topics])


@needs_redis
async def test_leaving_and_joining_a_topic_at_once_keeps_it_subscribed() -> None:
    """The unsubscribe of the one leaving must not undo the subscribe of the one joining."""
    async with brokers("redis") as (here, there):
        async with there.subscribe("t"):
            pass
        async with there.subscribe("t") as joined:
            await asyncio.sleep(0.1)  # the leaver's unsubscribe has had its turn
            await here.publish("t", {"n": 1})
            assert await next_message(joined) == {"n": 1}


async def test_subscribing_while_redis_is_away_goes_on_after_a_while() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0", _prefix(), confirm_timeout=0.2)
    try:
        started = asyncio.get_running_loop().time()
        async with broker.subscribe("t") as listening:
            assert asyncio.get_running_loop().time() - started < 1
            assert await nothing_within(listening, 0.1)
    finally:
        await broker.close()


@needs_redis
async def test_a_dropped_connection_comes_back_as_a_gap() -> None:
    assert REDIS_URL
    async with brokers("redis") as (here, there), there.subscribe("t") as listening:
        assert isinstance(there, RedisBroker)
        await here.publish("t", {"n": 1})
        assert await next_message(listening) == {"n": 1}
        admin = redis.Redis.from_url(REDIS_URL)
        try:
            # As a Redis restart would: the server closes the subscriber's connection (only
            # this broker's, found by its name: the Redis is shared).
            clients = await admin.client_list(_type="pubsub")
            ours = [c["id"] for c in clients if c["name"] == there.client_name]
            killed = [await admin.client_kill_filter(_id=client_id) for client_id in ours]
        finally:
            await admin.aclose()
        assert killed == [1]
        assert await next_message(listening, seconds=5) is None  # live again, and says so
        await here.publish("t", {"n": 2})
        assert await next_message(listening) == {"n": 2}


@needs_redis
async def test_a_publish_to_an_unreachable_redis_is_logged_not_raised() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0", _prefix())
    try:
        broker.publish_soon("t", {"n": 1})  # returns at once; the sending fails later
        await asyncio.sleep(0.2)
        assert not broker._outbox
    finally:
        await broker.close()


async def test_staged_messages_go_out_on_commit_only(runtime: Runtime) -> None:
    topic = f"test:{uuid.uuid4()}"
    async with runtime.live.subscribe(topic) as listening:
        async with runtime.db.transaction() as session:
            publish_after_commit(session.sync_session, "k", [(topic, {"v": 1})])
            publish_after_commit(session.sync_session, "k", [(topic, {"v": 2})])  # replaces
            publish_after_commit(session.sync_session, "other", [(topic, {"v": 3})])
            assert await nothing_within(listening, 0.1)  # not before the commit
        assert await next_message(listening) == {"v": 2}
        assert await next_message(listening) == {"v": 3}

        async def rolled_back() -> None:
            async with runtime.db.transaction() as session:
                publish_after_commit(session.sync_session, "k", [(topic, {"v": 4})])
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            await rolled_back()
        # A session that goes on after a rollback does not carry the rolled-back messages.
        async with runtime.db.session() as session:
            await session.execute(text("SELECT 1"))
            publish_after_commit(session.sync_session, "k", [(topic, {"v": 5})])
            await session.rollback()
            await session.execute(text("SELECT 1"))
            await session.commit()
        assert await nothing_within(listening)


async def test_a_savepoint_keeps_its_messages_only_when_released(runtime: Runtime) -> None:
    topic = f"test:{uuid.uuid4()}"
    async with runtime.live.subscribe(topic) as listening:
        async with runtime.db.transaction() as session:
            publish_after_commit(session.sync_session, "card", [(topic, {"v": "before"})])

            async def refused() -> None:
                async with session.begin_nested():
                    publish_after_commit(session.sync_session, "card", [(topic, {"v": "undone"})])
                    raise RuntimeError("refused")

            with pytest.raises(RuntimeError):
                await refused()
            async with session.begin_nested():
                publish_after_commit(session.sync_session, "kept", [(topic, {"v": "released"})])
            assert await nothing_within(listening, 0.1)
        got = [await next_message(listening), await next_message(listening)]
        assert got == [{"v": "before"}, {"v": "released"}]
        assert await nothing_within(listening)
