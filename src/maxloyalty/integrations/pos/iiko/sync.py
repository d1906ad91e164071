"""What we ask of iikoCloud for an integration, each call recorded as a `pos_syncs` row:
pulling its organizations and terminal groups (to map them to our restaurant), and pushing
our webhook settings (retried in the background while iiko is unreachable).

Each call makes a client of its own; the access token outlives it in the cache, so calls
for one apiLogin log in once an hour however many clients and processes make them.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.config import Settings
from maxloyalty.integrations.pos import service
from maxloyalty.integrations.pos.errors import NotAnIikoIntegration
from maxloyalty.integrations.pos.iiko.cloud import IIKO_CLOUD_URL, IikoCloud, TokenCache
from maxloyalty.integrations.pos.iiko.errors import (
    CredentialsRequired,
    IikoError,
    OrganizationRequired,
    PosUnavailable,
    PosUrlRefused,
)
from maxloyalty.integrations.pos.models import (
    PosIntegration,
    PosSync,
    PosSystem,
    SyncDirection,
    SyncStatus,
)
from maxloyalty.kit import jobs
from maxloyalty.kit.cache import Cache
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import Database
from maxloyalty.kit.ids import uuid7
from maxloyalty.kit.ssrf import TargetRefused, check_target

REGISTER_JOB = "pos.iiko_register_webhook"
# Minutes to wait after failed attempt n (1-based); then we give up and the admin retries.
RETRY_MINUTES = [1, 5, 15, 60, 240]
WEBHOOK_PATH = "/api/pos/iiko/webhook"
SyncCall = Callable[[AsyncSession, Settings, Cache, PosIntegration], Awaitable[PosSync]]


def webhook_uri(settings: Settings) -> str:
    return settings.public_url.rstrip("/") + WEBHOOK_PATH


async def _client(settings: Settings, cache: Cache, integration: PosIntegration) -> IikoCloud:
    if integration.system is not PosSystem.IIKO:
        raise NotAnIikoIntegration()
    credentials = service.credentials_of(integration)
    if "api_login" not in credentials:
        raise CredentialsRequired()
    base_url = credentials.get("base_url") or IIKO_CLOUD_URL
    try:
        await check_target(base_url, allow_private=settings.webhooks_allow_private)
    except TargetRefused as refused:
        raise PosUrlRefused(str(refused)) from refused
    secret = hmac.new(settings.secret("secret_key").encode(), b"iiko-token-cache", hashlib.sha256)
    return IikoCloud(base_url, credentials["api_login"], TokenCache(cache, secret.digest()))


def _start(integration: PosIntegration, direction: SyncDirection, operation: str) -> PosSync:
    return PosSync(
        id=uuid7(),
        tenant_id=integration.tenant_id,
        integration_id=integration.id,
        direction=direction,
        operation=operation,
        status=SyncStatus.PENDING,
        created_at=utcnow(),
    )


def _finish(
    sync: PosSync, integration: PosIntegration, error: IikoError | None, result: dict[str, Any]
) -> None:
    now = utcnow()
    sync.finished_at = now
    if error is None:
        sync.status, sync.result = SyncStatus.SUCCESS, result
        integration.last_sync_at = now
    else:
        sync.status, sync.error = SyncStatus.FAILED, str(error)[:1000]


async def pull_directory(
    session: AsyncSession, settings: Settings, cache: Cache, integration: PosIntegration
) -> PosSync:
    """The organizations and terminal groups the apiLogin sees."""
    client = await _client(settings, cache, integration)
    sync = _start(integration, SyncDirection.PULL, "directory")
    session.add(sync)
    error, result = None, {}
    try:
        organizations = await client.organizations()
        groups = await client.terminal_groups([o.id for o in organizations])
        result = {
            "organizations": [o.__dict__ for o in organizations],
            "terminal_groups": [g.__dict__ for g in groups],
        }
    except IikoError as exc:
        error = exc
    finally:
        await client.aclose()
    _finish(sync, integration, error, result)
    await session.flush()
    return sync


async def register_webhook(
    session: AsyncSession,
    settings: Settings,
    cache: Cache,
    integration: PosIntegration,
    attempt: int = 1,
) -> PosSync:
    """Point the organization's iiko webhooks at us with the integration's token; a
    failure iiko may recover from is tried again later by the worker."""
    if not integration.external_id:
        raise OrganizationRequired()
    assert integration.webhook_secret is not None
    client = await _client(settings, cache, integration)
    sync = _start(integration, SyncDirection.PUSH, "webhook_settings")
    sync.attempt = attempt
    session.add(sync)
    error, result = None, {}
    try:
        correlation = await client.register_webhook(
            integration.external_id, webhook_uri(settings), integration.webhook_secret
        )
        result = {"correlation_id": correlation, "uri": webhook_uri(settings)}
    except IikoError as exc:
        error = exc
    finally:
        await client.aclose()
    _finish(sync, integration, error, result)
    if error is not None and error.retryable and attempt <= len(RETRY_MINUTES):
        delay = timedelta(minutes=RETRY_MINUTES[attempt - 1])
        sync.next_retry_at = utcnow() + delay
        await jobs.enqueue(
            session,
            REGISTER_JOB,
            {"tenant_id": str(integration.tenant_id), "integration_id": str(integration.id)}
            | {"attempt": attempt + 1},
            delay=delay,
        )
    await session.flush()
    await record(
        session,
        "pos.iiko_webhook_registered" if error is None else "pos.iiko_webhook_failed",
        "pos_integration",
        integration.id,
        after={"sync_id": str(sync.id), "attempt": attempt},
    )
    return sync


async def retry_register(
    db: Database,
    settings: Settings,
    cache: Cache,
    tenant_id: uuid.UUID,
    integration_id: uuid.UUID,
    attempt: int,
) -> None:
    """The worker's next attempt at `register_webhook`, unless the integration is gone or off."""
    async with db.transaction(tenant_id) as session:
        integration = await session.get(PosIntegration, integration_id)
        if integration is None or not integration.is_active:
            return
        await register_webhook(session, settings, cache, integration, attempt)


async def run(
    session: AsyncSession,
    settings: Settings,
    cache: Cache,
    integration_id: uuid.UUID,
    call: SyncCall,
) -> PosSync:
    """An admin's iikoCloud call (`pull_directory`, `register_webhook`); a failure is
    refused after the attempt's record (a Rejection: the record is committed)."""
    integration = await service.get(session, integration_id)
    row = await call(session, settings, cache, integration)
    if row.status is SyncStatus.FAILED:
        raise PosUnavailable(f"iikoCloud refused or did not answer: {row.error}")
    return row
