"""Cache and rate limits behave the same on Redis and in process memory."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from maxloyalty.kit.cache import Cache, MemoryCache, RedisCache
from maxloyalty.kit.errors import TooManyRequests
from maxloyalty.kit.ratelimit import RateLimiter

REDIS_URL = os.environ.get("REDIS_URL")
backends = ["memory"] + (["redis"] if REDIS_URL else [])


def make_cache(kind: str) -> Cache:
    return (
        RedisCache(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")
        if kind == "redis"
        else MemoryCache()
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", backends)
async def test_cache_set_get_delete_and_expiry(kind: str) -> None:
    cache = make_cache(kind)
    try:
        assert await cache.get("k") is None
        await cache.set("k", b"v", ttl_seconds=1)
        assert await cache.get("k") == b"v"
        await cache.delete("k")
        assert await cache.get("k") is None
        await cache.set("short", b"x", ttl_seconds=1)
        await asyncio.sleep(1.2)
        assert await cache.get("short") is None
    finally:
        await cache.close()


async def test_memory_cache_is_bounded() -> None:
    cache = MemoryCache(max_items=2)
    for key in ("a", "b", "c"):
        await cache.set(key, key.encode(), ttl_seconds=60)
    assert await cache.get("a") is None
    assert await cache.get("c") == b"c"


@pytest.mark.parametrize("kind", backends)
async def test_rate_limit_allows_then_refuses_with_retry_after(kind: str) -> None:
    limiter = RateLimiter(REDIS_URL if kind == "redis" else None, f"mltest-{uuid.uuid4().hex[:8]}")
    key = uuid.uuid4().hex
    for _ in range(3):
        await limiter.hit("3/minute", "login", key)
    with pytest.raises(TooManyRequests) as refused:
        await limiter.hit("3/minute", "login", key)
    assert refused.value.status == 429
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    # Other keys have their own budget.
    await limiter.hit("3/minute", "login", uuid.uuid4().hex)


def test_redis_backend_is_exercised_in_ci() -> None:
    if os.environ.get("CI"):
        assert REDIS_URL, "CI must run the Redis variants (REDIS_URL unset)"
