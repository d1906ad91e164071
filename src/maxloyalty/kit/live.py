"""Live updates: small messages on named topics, fanned out to the subscribers of every
process; Redis pub/sub when `REDIS_URL` is set, process memory otherwise.

Delivery is at most once and carries no history: a subscriber sees what is published while
it listens. Where it may have missed something (its queue overflowed, the connection to
Redis dropped and came back, Redis had not confirmed the subscription in time) it receives
`None`, a gap: whatever it shows must then be read afresh. What was queued before a gap is
discarded with it, as the fresh read supersedes it.

Code that has just committed publishes with `publish_soon`: it never raises and never
waits, and one process's messages leave in the order they were published. Transactions
stage their messages with `publish_after_commit`; they go out when the outermost
transaction commits, and never when it, or the savepoint they were staged in, rolls back.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from datetime import datetime
from typing import Any, Protocol

import redis.asyncio as redis
import structlog
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = structlog.get_logger(__name__)

Message = dict[str, Any]

DEFAULT_MAX_QUEUED = 100  # per subscriber; a slow one loses its backlog to a gap
DEFAULT_MAX_PENDING = 10_000  # per process, published messages not yet sent to Redis
_BATCH = 200  # messages per pipelined round trip to Redis


def _plain(value: object) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a live message value")


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=_plain).encode()


class Subscription:
    """What one subscriber receives: `async for message in subscription`, where a message
    is a dict and `None` is a gap. The iteration ends when the broker closes. Waiting for
    the next message may be cancelled (a timeout for a heartbeat) without losing one."""

    def __init__(self, topics: tuple[str, ...], max_queued: int) -> None:
        self.topics = topics
        self.dropped = 0  # messages discarded by gaps, for logs and tests
        self._queue: deque[bytes] = deque()
        self._max_queued = max_queued
        self._gap = False
        self._ended = False
        self._ready = asyncio.Event()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message | None:
        while True:
            if self._gap:
                self._gap = False
                return None
            if self._queue:
                data = self._queue.popleft()
                try:
                    decoded: Message = json.loads(data)
                except ValueError:
                    log.warning("live_message_undecodable", topics=self.topics)
                    continue
                return decoded
            if self._ended:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()

    def _put(self, data: bytes) -> None:
        if len(self._queue) >= self._max_queued:
            self._mark_gap()
        self._queue.append(data)
        self._ready.set()

    def _mark_gap(self) -> None:
        self.dropped += len(self._queue)
        self._queue.clear()
        self._gap = True
        self._ready.set()

    def _end(self) -> None:
        self._ended = True
        self._ready.set()


class Broker(Protocol):
    async def publish(self, topic: str, message: Mapping[str, Any]) -> None:
        """Send now; raises when the message cannot be sent."""

    def publish_soon(self, topic: str, message: Mapping[str, Any]) -> None:
        """Send in the background, in order; never raises (a failure is logged)."""

    def subscribe(self, *topics: str) -> AbstractAsyncContextManager[Subscription]:
        """Listen to `topics` for the life of the block; the subscription is in force
        (confirmed by Redis) when the block begins, so a read made inside it and every
        later change are both seen. With Redis away, the block begins after a few seconds
        all the same, and a gap follows once Redis confirms."""

    async def close(self) -> None:
        """Send what is pending (briefly) and end every subscription."""


class MemoryBroker:
    """One process's subscribers only (development, a single node without Redis)."""

    def __init__(self, *, max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        self._max_queued = max_queued
        self._topics: dict[str, set[Subscription]] = {}

    async def publish(self, topic: str, message: Mapping[str, Any]) -> None:
        self._deliver(topic, encode(message))

    def publish_soon(self, topic: str, message: Mapping[str, Any]) -> None:
        try:
            data = encode(message)
        except (TypeError, ValueError):
            log.exception("live_message_unencodable", topic=topic)
            return
        self._deliver(topic, data)

    def _deliver(self, topic: str, data: bytes) -> None:
        for subscription in self._topics.get(topic, ()):
            subscription._put(data)

    @asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(tuple(dict.fromkeys(topics)), self._max_queued)
        for topic in subscription.topics:
            self._topics.setdefault(topic, set()).add(subscription)
        try:
            yield subscription
        finally:
            for topic in subscription.topics:
                listeners = self._topics.get(topic, set())
                listeners.discard(subscription)
                if not listeners:
                    self._topics.pop(topic, None)
            subscription._end()

    async def close(self) -> None:
        for listeners in self._topics.values():
            for subscription in listeners:
                subscription._end()
        self._topics.clear()


class RedisBroker:
    """Redis pub/sub. Each process holds one subscriber connection, opened with the first
    subscription, on which every local subscriber's channels are multiplexed; when it
    drops it is opened again (backing off up to `max_backoff` seconds) and every channel
    subscribed anew, and each subscriber hears a gap once its channels are live again.
    A silent connection is probed with a PING every `ping_interval` seconds and given up
    when the next interval passes without an answer. Publishing uses a separate pool."""

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        max_queued: int = DEFAULT_MAX_QUEUED,
        max_pending: int = DEFAULT_MAX_PENDING,
        confirm_timeout: float = 5.0,
        ping_interval: float = 10.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.prefix = prefix
        self._max_queued = max_queued
        self._max_pending = max_pending
        self._confirm_timeout = confirm_timeout
        self._ping_interval = ping_interval
        self._max_backoff = max_backoff
        self._publisher = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        # No retries inside redis-py: the reader reconnects itself, so it knows to tell the
        # subscribers about the gap. The name finds the connection in CLIENT LIST.
        self.client_name = prefix.rstrip(":") + ":subscriber"
        self._listener = redis.Redis.from_url(
            url,
            socket_connect_timeout=2,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
            client_name=self.client_name,
        )
        self._channels: dict[str, set[Subscription]] = {}
        self._confirmed: dict[str, asyncio.Event] = {}  # set once Redis confirmed SUBSCRIBE
        self._stale: set[str] = set()  # channels whose subscribers hear a gap when confirmed
        self._pubsub: PubSub | None = None
        self._commands = asyncio.Lock()  # one writer at a time on the subscriber connection
        self._reader: asyncio.Task[None] | None = None
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._outbox_ready = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[None]] = set()
        self._closed = False

    # Publishing

    async def publish(self, topic: str, message: Mapping[str, Any]) -> None:
        await self._publisher.publish(self.prefix + topic, encode(message))

    def publish_soon(self, topic: str, message: Mapping[str, Any]) -> None:
        if self._closed:
            log.warning("live_publish_after_close", topic=topic)
            return
        try:
            data = encode(message)
            if self._drainer is None or self._drainer.done():
                self._drainer = asyncio.get_running_loop().create_task(self._drain())
        except (TypeError, ValueError, RuntimeError):
            log.exception("live_publish_dropped", topic=topic)
            return
        if len(self._outbox) >= self._max_pending:
            self._outbox.popleft()
            log.warning("live_outbox_full", dropped=1)
        self._outbox.append((self.prefix + topic, data))
        self._outbox_ready.set()

    async def _drain(self) -> None:
        """The one task that sends this process's messages: one at a time keeps their
        order; each round trip takes every message waiting by then."""
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                batch = [self._outbox.popleft() for _ in range(min(_BATCH, len(self._outbox)))]
                try:
                    async with self._publisher.pipeline(transaction=False) as pipe:
                        for channel, data in batch:
                            pipe.publish(channel, data)
                        await pipe.execute()
                except (RedisError, OSError) as exc:
                    # Subscribers elsewhere lost their connection too, and hear a gap.
                    log.warning("live_publish_failed", error=str(exc), dropped=len(batch))
            if self._closed:
                return

    # Subscribing

    @asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[Subscription]:
        if self._closed:
            raise RuntimeError("the live broker is closed")
        subscription = Subscription(tuple(dict.fromkeys(topics)), self._max_queued)
        channels = [self.prefix + topic for topic in subscription.topics]
        new = []
        for channel in channels:
            listeners = self._channels.setdefault(channel, set())
            if not listeners:
                new.append(channel)
                self._confirmed[channel] = asyncio.Event()
            listeners.add(subscription)
        try:
            if self._reader is None or self._reader.done():
                self._reader = asyncio.get_running_loop().create_task(self._read())
            if new:
                await self._command("subscribe", new)
            await self._wait_confirmed(channels)
            yield subscription
        finally:
            for channel in channels:
                listeners = self._channels.get(channel, set())
                listeners.discard(subscription)
                if not listeners:
                    self._channels.pop(channel, None)
                    self._confirmed.pop(channel, None)
                    self._stale.discard(channel)
            subscription._end()
            if not self._closed:
                # A task, not an await: this block may be ending in a cancellation, which
                # would cancel an await here too and leave the channel subscribed.
                chore = asyncio.get_running_loop().create_task(
                    self._command("unsubscribe", channels)
                )
                self._chores.add(chore)
                chore.add_done_callback(self._chores.discard)

    async def _wait_confirmed(self, channels: Sequence[str]) -> None:
        waiting = [c for c in channels if not self._confirmed[c].is_set()]
        try:
            async with asyncio.timeout(self._confirm_timeout):
                for channel in waiting:
                    await self._confirmed[channel].wait()
        except TimeoutError:
            # Redis is away: go on, and hear a gap once it confirms.
            unconfirmed = [c for c in waiting if not self._confirmed[c].is_set()]
            self._stale.update(unconfirmed)
            log.warning("live_subscribe_unconfirmed", channels=unconfirmed)

    async def _command(self, command: str, channels: Sequence[str]) -> None:
        async with self._commands:
            if command == "unsubscribe":
                # Another subscriber may have taken the channel up since this was asked.
                channels = [c for c in channels if c not in self._channels]
            pubsub = self._pubsub
            if pubsub is None or not channels:
                return  # not connected: the reader subscribes every channel when it connects
            try:
                if command == "subscribe":
                    await pubsub.subscribe(*channels)
                else:
                    await pubsub.unsubscribe(*channels)
            except (RedisError, OSError) as exc:
                log.info("live_command_failed", command=command, error=str(exc))

    async def _read(self) -> None:
        backoff = 0.1
        while True:
            try:
                pubsub = await self._connect()
                backoff = 0.1
                await self._listen(pubsub)
            except (RedisError, OSError) as exc:
                log.warning("live_connection_lost", error=str(exc))
            except Exception:  # whatever it was, the subscribers must not go deaf for good
                log.exception("live_reader_failed")
            await self._disconnect()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _connect(self) -> PubSub:
        async with self._commands:
            pubsub = self._listener.pubsub()
            try:
                await pubsub.ping()  # connects; the answer comes in with the messages
                if self._channels:
                    await pubsub.subscribe(*self._channels)
            except BaseException:
                await pubsub.aclose()
                raise
            self._pubsub = pubsub
            return pubsub

    async def _disconnect(self) -> None:
        async with self._commands:
            pubsub, self._pubsub = self._pubsub, None
            for channel, confirmed in self._confirmed.items():
                confirmed.clear()
                self._stale.add(channel)
        if pubsub is not None:
            with suppress(RedisError, OSError):
                await pubsub.aclose()

    async def _listen(self, pubsub: PubSub) -> None:
        awaiting_pong = False
        while True:
            message = await pubsub.get_message(timeout=self._ping_interval)
            if message is None:
                if awaiting_pong:
                    raise redis.ConnectionError("no answer to PING")
                async with self._commands:
                    await pubsub.ping()
                awaiting_pong = True
                continue
            awaiting_pong = False
            kind, channel = message["type"], message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode()
            if kind == "message":
                for subscription in self._channels.get(channel, ()):
                    subscription._put(message["data"])
            elif kind == "subscribe":
                self._on_confirmed(channel)

    def _on_confirmed(self, channel: str) -> None:
        confirmed = self._confirmed.get(channel)
        if confirmed is None:
            return  # every subscriber has left meanwhile
        confirmed.set()
        if channel in self._stale:
            self._stale.discard(channel)
            for subscription in self._channels.get(channel, ()):
                subscription._mark_gap()

    async def close(self) -> None:
        self._closed = True
        if self._drainer is not None:
            self._outbox_ready.set()
            try:
                await asyncio.wait_for(self._drainer, timeout=2)
            except TimeoutError:
                log.warning("live_close_dropped", pending=len(self._outbox))
        for task in (self._reader, *self._chores):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        for listeners in self._channels.values():
            for subscription in listeners:
                subscription._end()
        self._channels.clear()
        if self._pubsub is not None:
            with suppress(RedisError, OSError):
                await self._pubsub.aclose()
        await self._listener.aclose()
        await self._publisher.aclose()


def broker_from_url(redis_url: str | None, key_prefix: str) -> Broker:
    return RedisBroker(redis_url, f"{key_prefix}:live:") if redis_url else MemoryBroker()


# Publishing after commit. The broker rides in `session.info` (kit.db puts it there).

BROKER_KEY = "live_broker"
_STAGED = "live_staged"

Staged = dict[SessionTransaction, dict[Hashable, Sequence[tuple[str, Message]]]]


def broker_of(session: Session) -> Broker | None:
    broker: Broker | None = session.info.get(BROKER_KEY)
    return broker


def publish_after_commit(
    session: Session, key: Hashable, messages: Sequence[tuple[str, Message]]
) -> None:
    """Publish `(topic, message)` pairs once the session's outermost transaction commits;
    staged again under the same `key` in the same transaction, the later pairs replace the
    earlier. Staged in a savepoint, they are dropped if it rolls back. No broker, no-op."""
    if broker_of(session) is None:
        return
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:
        return
    staged: Staged = session.info.setdefault(_STAGED, {})
    staged.setdefault(transaction, {})[key] = messages


def _enclosing(savepoint: SessionTransaction) -> SessionTransaction:
    """The savepoint or root transaction that a released savepoint's changes fall into."""
    parent = savepoint.parent
    while parent is not None and not parent.nested and parent.parent is not None:
        parent = parent.parent
    return parent or savepoint


@event.listens_for(Session, "after_commit")
def _commit_staged(session: Session) -> None:
    staged: Staged | None = session.info.get(_STAGED)
    if not staged:
        return
    savepoint = session.get_nested_transaction()
    if savepoint is not None:  # released, not committed: its messages join the enclosing
        layer = staged.pop(savepoint, None)
        if layer:
            staged.setdefault(_enclosing(savepoint), {}).update(layer)
        return
    del session.info[_STAGED]
    broker = broker_of(session)
    if broker is None:
        return
    for layer in staged.values():
        for messages in layer.values():
            for topic, message in messages:
                try:
                    broker.publish_soon(topic, message)
                except Exception:  # the operation has committed: never fail it now
                    log.exception("live_publish_failed", topic=topic)


@event.listens_for(Session, "after_transaction_end")
def _drop_staged(session: Session, transaction: SessionTransaction) -> None:
    """A savepoint or transaction ending with its messages still staged was rolled back
    (a released savepoint and a committed transaction took theirs already)."""
    staged: Staged | None = session.info.get(_STAGED)
    if not staged:
        return
    if transaction.nested:
        staged.pop(transaction, None)
    elif transaction.parent is None:
        del session.info[_STAGED]
