"""The FarCards HTTP/XML server R-Keeper calls, one path per call:
`POST /api/pos/rkeeper/{GetCardInfoEx|FindAccountsByKind|TransactionsEx}`, authenticated
with the integration's API key."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from maxloyalty.identity.auth import TillKey
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.integrations.pos import rkeeper, service
from maxloyalty.integrations.pos.models import PosSystem
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import NotFound, problem_responses
from maxloyalty.kit.http import read_limited
from maxloyalty.ledger.identify import limit_lookups
from maxloyalty.runtime import runtime_of

log = structlog.get_logger(__name__)
router = APIRouter(tags=["pos"], responses=problem_responses(400, 401, 403, 404, 413))
MAX_BODY = 1 << 20
XML_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/xml": {"schema": {"type": "string"}}},
    }
}


@router.post(
    "/api/pos/rkeeper/{call}",
    response_class=Response,
    responses={200: {"content": {"application/xml": {"schema": {"type": "string"}}}}},
    openapi_extra=XML_BODY,
)
async def farcards(
    call: Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z]+$")],
    request: Request,
    principal: TillKey,
    session: TenantSession,
) -> Response:
    """Card lookup (`GetCardInfoEx`, `FindAccountsByKind` kind 3 = QR) and closed checks
    (`TransactionsEx`, all or nothing; a re-sent check answers Result="0" again)."""
    name = next((c for c in rkeeper.CALLS if c.lower() == call.lower()), None)
    if name is None:
        raise NotFound(f"FarCards call {call} is not served here.", code="unknown_call")
    now = utcnow()
    integration, ctx = await service.till_context(session, principal, now, PosSystem.RKEEPER)
    body = await read_limited(request, MAX_BODY)
    root, raw = rkeeper.parse(body)
    runtime = runtime_of(request)
    if name != "TransactionsEx":  # card lookups: as rate limited as any identification
        await limit_lookups(runtime.limiter, runtime.settings, ctx.principal)
    if name == "GetCardInfoEx":
        content = await rkeeper.card_info(
            session, integration, ctx.system, rkeeper.query_of(root), now
        )
    elif name == "FindAccountsByKind":
        content = await rkeeper.find_by_qr(
            session, integration, ctx.system, runtime.qr, rkeeper.query_of(root)
        )
    else:
        # The savepoint's rollback expires the loaded rows: keep what the refusal's record needs.
        tenant_id, integration_id = integration.tenant_id, integration.id
        try:
            async with session.begin_nested():
                await rkeeper.post_check(ctx, integration, root, raw)
        except rkeeper.Refused as refused:
            log.info("rkeeper_check_refused", integration=str(integration_id), why=str(refused))
            part = refused.part
            await service.record_refusal(
                session,
                tenant_id,
                integration_id,
                order_id=part.number,
                check_amount=part.spend + part.card_paid,
                raw=raw,
                error=str(refused),
            )
            content = rkeeper.answer(name, 1, ErrorText=str(refused)[:255])
        else:
            content = rkeeper.answer(name, 0)
    return Response(content, media_type=rkeeper.MEDIA_TYPE)
