"""iiko: the webhook receiver iikoTransport posts to, and the admin's iikoCloud actions."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, TenantAdmin
from maxloyalty.identity.dependencies import PublicSession, TenantSession
from maxloyalty.integrations.pos.errors import (
    InvalidWebhookToken,
    NotAnIikoIntegration,
    PosIntegrationNotFound,
)
from maxloyalty.integrations.pos.iiko import sync, webhook
from maxloyalty.integrations.pos.iiko.errors import (
    CredentialsRequired,
    EventNotFound,
    InvalidEvents,
    OrganizationRequired,
    PosUnavailable,
    PosUrlRefused,
    RetryLater,
)
from maxloyalty.integrations.pos.schemas import EventsReceived, PosEventOut, PosSyncOut
from maxloyalty.kit.errors import PayloadTooLarge, problem_responses
from maxloyalty.kit.http import read_limited
from maxloyalty.runtime import runtime_of

router = APIRouter(tags=["pos"], responses=problem_responses(*SIGNED_IN_REFUSALS))
MAX_BODY = 4 << 20
JSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}},
    }
}
SYNC_ERRORS = (
    PosIntegrationNotFound,
    NotAnIikoIntegration,
    CredentialsRequired,
    PosUrlRefused,
    PosUnavailable,
)


def _token(request: Request) -> str:
    """iiko sends back the authToken we registered; integrators see it in Authorization,
    with or without a scheme."""
    raw = request.headers.get("authorization", "").strip()
    token = raw.split(" ", 1)[1].strip() if " " in raw else raw
    if not token:
        raise InvalidWebhookToken()
    return token


@router.post(
    "/api/pos/iiko/webhook",
    responses=problem_responses(PayloadTooLarge, InvalidWebhookToken, InvalidEvents),
    openapi_extra=JSON_BODY,
)
async def iiko_webhook(request: Request, session: PublicSession) -> EventsReceived:
    """iikoTransport events (a JSON array). Every event is kept and handed to the worker in
    the same transaction, then the call is answered: closed orders of members accrue points
    there; other event types are logged."""
    integration = await webhook.caller(session, runtime_of(request).api_key_key, _token(request))
    body = await read_limited(request, MAX_BODY)
    received = await webhook.receive(session, integration, body)
    return EventsReceived(received=received)


@router.post(
    "/api/pos/integrations/{integration_id}/events/{event_id}/replay",
    responses=problem_responses(EventNotFound, RetryLater),
)
async def replay_event(
    integration_id: uuid.UUID,
    event_id: uuid.UUID,
    admin: TenantAdmin,
    session: TenantSession,
    request: Request,
) -> PosEventOut:
    """Handle a stored event again (say, after the guest joined); it never posts twice."""
    assert admin.tenant_id is not None
    handled = await webhook.replay(
        session, runtime_of(request).db, admin.tenant_id, integration_id, event_id
    )
    return PosEventOut.model_validate(handled)


@router.post(
    "/api/pos/integrations/{integration_id}/iiko/directory",
    responses=problem_responses(*SYNC_ERRORS),
)
async def pull_directory(
    integration_id: uuid.UUID, _admin: TenantAdmin, session: TenantSession, request: Request
) -> PosSyncOut:
    """The iiko organizations and terminal groups this integration's apiLogin sees."""
    runtime = runtime_of(request)
    row = await sync.run(
        session, runtime.settings, runtime.cache, integration_id, sync.pull_directory
    )
    return PosSyncOut.model_validate(row)


@router.post(
    "/api/pos/integrations/{integration_id}/iiko/webhook",
    responses=problem_responses(*SYNC_ERRORS, OrganizationRequired),
)
async def register_webhook(
    integration_id: uuid.UUID, _admin: TenantAdmin, session: TenantSession, request: Request
) -> PosSyncOut:
    """Point the organization's iiko webhooks at this platform (retried in the background
    while iikoCloud is unreachable)."""
    runtime = runtime_of(request)
    row = await sync.run(
        session, runtime.settings, runtime.cache, integration_id, sync.register_webhook
    )
    return PosSyncOut.model_validate(row)
