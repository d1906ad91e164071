"""The long-lived resources of one process: settings, database pools, cache, rate limiter,
live-update broker."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import SecretStr
from starlette.requests import Request

from maxloyalty.config import Settings
from maxloyalty.integrations.sms import SmsConfig, SmsSender, sms_sender
from maxloyalty.kit import crypto, refdata
from maxloyalty.kit.cache import Cache, cache_from_url
from maxloyalty.kit.db import Database, runtime_urls
from maxloyalty.kit.embedded import resolve_owner_url
from maxloyalty.kit.jobs import JobContext
from maxloyalty.kit.live import Broker, broker_from_url
from maxloyalty.kit.ratelimit import RateLimiter
from maxloyalty.kit.signing import QrSigner, RotatingCodes, SessionPolicy, TokenKeys


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def sms_config(settings: Settings) -> SmsConfig:
    return SmsConfig(
        provider=settings.sms_provider,
        smsru_api_id=_secret(settings.smsru_api_id),
        smsc_login=settings.smsc_login,
        smsc_password=_secret(settings.smsc_password),
        smsc_apikey=_secret(settings.smsc_apikey),
        twilio_account_sid=settings.twilio_account_sid,
        twilio_auth_token=_secret(settings.twilio_auth_token),
        twilio_from=settings.twilio_from,
        twilio_messaging_service_sid=settings.twilio_messaging_service_sid,
        base_url=settings.sms_base_url,
    )


def _subkey(secret: str, purpose: bytes) -> bytes:
    """Independent keys for independent uses of the one installation secret."""
    return hmac.new(secret.encode(), purpose, hashlib.sha256).digest()


@dataclass
class Runtime:
    settings: Settings
    db: Database
    cache: Cache
    live: Broker
    limiter: RateLimiter
    sessions: SessionPolicy
    otp_key: bytes
    api_key_key: bytes
    qr: QrSigner
    rotating_codes: RotatingCodes
    sms: SmsSender
    _follower: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def start(cls, settings: Settings) -> Runtime:
        owner_url = resolve_owner_url(settings.database_url, settings.data_dir)
        app_url, platform_url = runtime_urls(settings, owner_url)
        crypto.configure(crypto.keyring_of(settings))
        secret = settings.secret("secret_key")
        keys = TokenKeys(
            current=secret,
            previous=tuple(k.get_secret_value() for k in settings.previous_secret_keys),
        )
        live = broker_from_url(settings.redis_url, settings.redis_key_prefix)
        return cls(
            settings=settings,
            db=Database(
                app_url,
                platform_url,
                pool_size=settings.db_pool_size,
                pool_timeout=settings.db_pool_timeout,
                live=live,
            ),
            cache=cache_from_url(settings.redis_url, settings.redis_key_prefix),
            live=live,
            limiter=RateLimiter(settings.redis_url, settings.redis_key_prefix),
            sessions=SessionPolicy(
                keys=keys,
                hmac_key=_subkey(secret, b"refresh-token"),
                access_ttl=timedelta(minutes=settings.access_token_minutes),
                refresh_ttl=timedelta(days=settings.refresh_token_days),
            ),
            otp_key=_subkey(secret, b"one-time-code"),
            api_key_key=_subkey(secret, b"api-key"),
            qr=QrSigner(_subkey(secret, b"card-qr")),
            rotating_codes=RotatingCodes(_subkey(secret, b"card-rotating-code")),
            sms=sms_sender(sms_config(settings)),
        )

    def follow_changes(self) -> None:
        """Drop the reference data other processes change (`kit.refdata`), from now until
        `close`; needs the running event loop, so a server or worker calls it once started."""
        if self._follower is None:
            self._follower = asyncio.create_task(refdata.follow(self.live))

    def job_context(self) -> JobContext:
        """What the jobs this process runs get of it."""
        return JobContext(db=self.db, settings=self.settings, cache=self.cache)

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        await self.sms.aclose()
        await self.db.dispose()
        await self.live.close()  # after the pools: no commit is left to publish
        await self.cache.close()


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime
