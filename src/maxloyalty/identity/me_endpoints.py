"""A signed-in person's own data: export and erasure."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from maxloyalty.identity import personal_data
from maxloyalty.identity.dependencies import Authorize, TenantSession
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.errors import problem_responses

router = APIRouter(prefix="/api/me", tags=["me"], responses=problem_responses(401, 403, 404))
Person = Annotated[
    Principal,
    Depends(Authorize(Role.GUEST, Role.CASHIER, Role.MANAGER, Role.RESTAURANT_ADMIN)),
]


@router.get("/data")
async def export_my_data(principal: Person, session: TenantSession) -> dict[str, Any]:
    """Everything stored about the caller, as JSON."""
    data = await personal_data.export(session, principal.subject)
    await session.commit()
    return data


@router.post("/erase", status_code=status.HTTP_204_NO_CONTENT)
async def erase_me(principal: Person, session: TenantSession) -> Response:
    """Anonymize the caller and end every session; the ledger keeps its history."""
    assert principal.tenant_id is not None
    await personal_data.erase(session, principal.tenant_id, principal.subject)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
