"""The long-lived resources of one process: settings, database pools, cache, rate limiter."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from maxloyalty.config import Settings
from maxloyalty.kit.cache import Cache, cache_from_url
from maxloyalty.kit.db import Database, runtime_urls
from maxloyalty.kit.embedded import resolve_owner_url
from maxloyalty.kit.ratelimit import RateLimiter


@dataclass
class Runtime:
    settings: Settings
    db: Database
    cache: Cache
    limiter: RateLimiter

    @classmethod
    def start(cls, settings: Settings) -> Runtime:
        owner_url = resolve_owner_url(settings.database_url, settings.data_dir)
        app_url, platform_url = runtime_urls(settings, owner_url)
        return cls(
            settings=settings,
            db=Database(app_url, platform_url, pool_size=settings.db_pool_size),
            cache=cache_from_url(settings.redis_url),
            limiter=RateLimiter(settings.redis_url),
        )

    async def close(self) -> None:
        await self.cache.close()
        await self.db.dispose()


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime
