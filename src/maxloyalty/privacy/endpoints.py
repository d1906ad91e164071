"""A signed-in person's own data: export and erasure, in their network or in all of them."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, Person
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.kit.errors import problem_responses
from maxloyalty.privacy.errors import UserNotFound
from maxloyalty.privacy.schemas import ErasureRequest, PersonalDataExport, Scope
from maxloyalty.privacy.service import export_erase as personal_data

router = APIRouter(prefix="/api/me", tags=["me"], responses=problem_responses(*SIGNED_IN_REFUSALS))


@router.get("/data", responses=problem_responses(UserNotFound))
async def export_my_data(
    principal: Person, session: TenantSession, scope: Scope = Scope.NETWORK
) -> PersonalDataExport:
    """Everything stored about the caller, as JSON: this network's, or `scope=all`."""
    assert principal.tenant_id is not None
    return await personal_data.export(session, principal.tenant_id, principal.subject, scope)


@router.post(
    "/erase", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(UserNotFound)
)
async def erase_me(
    principal: Person, session: TenantSession, body: ErasureRequest | None = None
) -> Response:
    """Erase the caller's data in this network (`{"scope": "all"}`: in every network, and
    the account itself) and end their sessions there; the ledger keeps its history."""
    assert principal.tenant_id is not None
    scope = body.scope if body else Scope.NETWORK
    await personal_data.erase(session, principal.tenant_id, principal.subject, scope)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
