"""Rate limits (the `limits` library): a moving window in Redis or process memory."""

from __future__ import annotations

import math
import time

from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from maxloyalty.kit.errors import TooManyRequests


class RateLimiter:
    def __init__(self, redis_url: str | None, key_prefix: str = "ml") -> None:
        self.storage: Storage = (
            RedisStorage(
                redis_url.replace("redis://", "async+redis://", 1),
                implementation="redispy",
                key_prefix=f"{key_prefix}:rl",
            )
            if redis_url
            else MemoryStorage()
        )
        self._limiter = MovingWindowRateLimiter(self.storage)

    async def hit(self, rule: str, *keys: str) -> None:
        """Count one hit of `keys` against `rule` (e.g. "10/minute"); 429 when over it."""
        if await self._limiter.hit(parse(rule), *keys):
            return
        retry_after = await self.retry_after(rule, *keys)
        raise TooManyRequests(
            f"Too many requests; try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )

    async def retry_after(self, rule: str, *keys: str) -> int:
        """Whole seconds until the oldest hit in `keys`' window ages out (at least 1)."""
        stats = await self._limiter.get_window_stats(parse(rule), *keys)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def test(self, rule: str, *keys: str) -> bool:
        """Whether one more hit would still be within `rule` (counts nothing)."""
        return bool(await self._limiter.test(parse(rule), *keys))

    async def count(self, rule: str, *keys: str) -> None:
        """Count a hit without refusing (e.g. a failure counted against a later `test`)."""
        await self._limiter.hit(parse(rule), *keys)

    async def reset(self) -> None:
        """Forget every counter under this limiter's prefix (tests use a prefix of their own)."""
        await self.storage.reset()
