"""The FarCards HTTP/XML server R-Keeper calls, one path per call:
`POST /api/pos/rkeeper/{GetCardInfoEx|FindAccountsByKind|TransactionsEx}`, authenticated
with the integration's API key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from maxloyalty.identity.auth import TillKey
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.identity.errors import CREDENTIAL_REFUSALS, RoleForbidden
from maxloyalty.integrations.pos.errors import (
    PosIntegrationInactive,
    PosIntegrationRequired,
    PosSystemMismatch,
)
from maxloyalty.integrations.pos.rkeeper import protocol, service
from maxloyalty.integrations.pos.rkeeper.errors import InvalidRequest, InvalidXml, UnknownCall
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import PayloadTooLarge, problem_responses
from maxloyalty.kit.http import read_limited
from maxloyalty.runtime import runtime_of

XML_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/xml": {"schema": {"type": "string"}}}}
}
router = APIRouter(
    tags=["pos"], responses=problem_responses(*CREDENTIAL_REFUSALS, RoleForbidden, PayloadTooLarge)
)
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
    responses=XML_ANSWER
    | problem_responses(
        InvalidXml,
        InvalidRequest,
        UnknownCall,
        PosIntegrationRequired,
        PosIntegrationInactive,
        PosSystemMismatch,
        429,
    ),
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
    name = protocol.call_named(call)
    body = await read_limited(request, MAX_BODY)
    runtime = runtime_of(request)
    content = await service.serve(
        session, principal, runtime.limiter, runtime.settings, runtime.qr, name, body, utcnow()
    )
    return Response(content, media_type=protocol.MEDIA_TYPE)
