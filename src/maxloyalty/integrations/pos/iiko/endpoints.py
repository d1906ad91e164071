"""iiko: the webhook receiver iikoTransport posts to, and the admin's iikoCloud actions."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.config import Settings
from maxloyalty.identity.auth import TenantAdmin
from maxloyalty.identity.dependencies import PublicSession, TenantSession
from maxloyalty.integrations.pos import service
from maxloyalty.integrations.pos.admin_endpoints import PosEventOut, PosSyncOut
from maxloyalty.integrations.pos.iiko import sync, webhook
from maxloyalty.integrations.pos.models import PosEvent, PosIntegration, PosSync, SyncStatus
from maxloyalty.kit.cache import Cache
from maxloyalty.kit.errors import AppError, NotFound, Rejection, Unauthorized, problem_responses
from maxloyalty.kit.http import read_limited
from maxloyalty.runtime import runtime_of

router = APIRouter(tags=["pos"], responses=problem_responses(401, 403, 404, 422))
MAX_BODY = 4 << 20
SyncCall = Callable[[AsyncSession, Settings, Cache, PosIntegration], Awaitable[PosSync]]
JSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}},
    }
}


def _token(request: Request) -> str:
    """iiko sends back the authToken we registered; integrators see it in Authorization,
    with or without a scheme."""
    raw = request.headers.get("authorization", "").strip()
    token = raw.split(" ", 1)[1].strip() if " " in raw else raw
    if not token:
        raise Unauthorized("The webhook token is missing.", code="invalid_webhook_token")
    return token


@router.post(
    "/api/pos/iiko/webhook",
    responses=problem_responses(400, 413),
    openapi_extra=JSON_BODY,
)
async def iiko_webhook(request: Request, session: PublicSession) -> dict[str, int]:
    """iikoTransport events (a JSON array). Every event is kept and handed to the worker in
    the same transaction, then the call is answered: closed orders of members accrue points
    there; other event types are logged."""
    token = _token(request)
    body = await read_limited(request, MAX_BODY)
    received = await webhook.receive(session, runtime_of(request).api_key_key, token, body)
    return {"received": received}


@router.post(
    "/api/pos/integrations/{integration_id}/events/{event_id}/replay",
    responses=problem_responses(503),
)
async def replay_event(
    integration_id: uuid.UUID,
    event_id: uuid.UUID,
    admin: TenantAdmin,
    session: TenantSession,
    request: Request,
) -> PosEventOut:
    """Handle a stored event again (say, after the guest joined); it never posts twice."""
    event = await session.scalar(
        select(PosEvent).where(PosEvent.id == event_id, PosEvent.integration_id == integration_id)
    )
    if event is None:
        raise NotFound("No such event.", code="event_not_found")
    assert admin.tenant_id is not None
    try:
        handled = await webhook.handle(
            runtime_of(request).db, admin.tenant_id, event.id, again=True
        )
    except webhook.RetryLater as busy:
        raise AppError(str(busy), code="retry_later", status=503) from busy
    return PosEventOut.model_validate(handled)


async def _sync(
    session: AsyncSession, request: Request, integration_id: uuid.UUID, call: SyncCall
) -> PosSyncOut:
    """Run one iikoCloud call; keep the record of the attempt, then report a failure."""
    integration = await service.get(session, integration_id)
    runtime = runtime_of(request)
    row = await call(session, runtime.settings, runtime.cache, integration)
    out = PosSyncOut.model_validate(row)
    if row.status is SyncStatus.FAILED:  # a Rejection: the attempt's record is committed
        raise Rejection(
            f"iikoCloud refused or did not answer: {row.error}",
            code="pos_unavailable",
            status=502,
        )
    return out


@router.post(
    "/api/pos/integrations/{integration_id}/iiko/directory",
    responses=problem_responses(502),
)
async def pull_directory(
    integration_id: uuid.UUID, _admin: TenantAdmin, session: TenantSession, request: Request
) -> PosSyncOut:
    """The iiko organizations and terminal groups this integration's apiLogin sees."""
    return await _sync(session, request, integration_id, sync.pull_directory)


@router.post(
    "/api/pos/integrations/{integration_id}/iiko/webhook",
    responses=problem_responses(502),
)
async def register_webhook(
    integration_id: uuid.UUID, _admin: TenantAdmin, session: TenantSession, request: Request
) -> PosSyncOut:
    """Point the organization's iiko webhooks at this platform (retried in the background
    while iikoCloud is unreachable)."""
    return await _sync(session, request, integration_id, sync.register_webhook)
