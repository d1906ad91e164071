"""Programme configuration for the tenant admin: type, mode, settings, levels, design, logo."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, Staff, TenantAdmin
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.kit.errors import InvalidCursor, PayloadTooLarge, problem_responses
from maxloyalty.kit.http import read_limited
from maxloyalty.kit.pagination import Page, Paging, make_page
from maxloyalty.loyalty import service
from maxloyalty.loyalty.errors import (
    InvalidLevels,
    LogoInvalid,
    LogoTypeUnsupported,
    ProgramExists,
    ProgramNotFound,
    RequiredSetting,
)
from maxloyalty.loyalty.models import (
    LOGO_TYPES,
    MAX_LOGO_BYTES,
    BrandLogo,
    LoyaltyLevel,
    LoyaltySystem,
)
from maxloyalty.loyalty.schemas import (
    LevelIn,
    LevelOut,
    LogoOut,
    ProgramCreate,
    ProgramOut,
    ProgramSettings,
)
from maxloyalty.network.errors import RestaurantNotFound

router = APIRouter(tags=["loyalty programme"], responses=problem_responses(*SIGNED_IN_REFUSALS))
IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            kind: {"schema": {"type": "string", "format": "binary"}} for kind in LOGO_TYPES
        },
    }
}


def _out(system: LoyaltySystem, levels: list[LoyaltyLevel], logo: BrandLogo | None) -> ProgramOut:
    out = ProgramOut.model_validate(system)
    out.levels = [LevelOut.model_validate(lv) for lv in levels]
    out.logo = LogoOut.model_validate(logo) if logo else None
    return out


@router.get("/api/loyalty/programs", responses=problem_responses(InvalidCursor))
async def list_programs(_staff: Staff, session: TenantSession, paging: Paging) -> Page[ProgramOut]:
    rows, cursor = make_page(await service.list_programs(session, paging), paging)
    return Page(items=[_out(*program) for program in rows], next_cursor=cursor)


@router.post(
    "/api/loyalty/programs",
    status_code=201,
    responses=problem_responses(ProgramExists, RestaurantNotFound, InvalidLevels),
)
async def create_program(
    body: ProgramCreate, admin: TenantAdmin, session: TenantSession
) -> ProgramOut:
    assert admin.tenant_id is not None
    return _out(*await service.open_program(session, admin.tenant_id, body))


@router.patch(
    "/api/loyalty/programs/{program_id}",
    responses=problem_responses(ProgramNotFound, RequiredSetting),
)
async def update_program(
    program_id: uuid.UUID, body: ProgramSettings, _admin: TenantAdmin, session: TenantSession
) -> ProgramOut:
    changes = body.model_dump(exclude_unset=True)
    return _out(*await service.update_program(session, program_id, changes))


@router.put(
    "/api/loyalty/programs/{program_id}/levels",
    responses=problem_responses(ProgramNotFound, InvalidLevels),
)
async def replace_levels(
    program_id: uuid.UUID, body: list[LevelIn], _admin: TenantAdmin, session: TenantSession
) -> ProgramOut:
    """Replace the levels; every card is then re-evaluated in the background."""
    return _out(*await service.replace_levels(session, program_id, service.level_specs(body)))


@router.put(
    "/api/loyalty/programs/{program_id}/logo",
    responses=problem_responses(ProgramNotFound, LogoTypeUnsupported, PayloadTooLarge, LogoInvalid),
    openapi_extra=IMAGE_BODY,
)
async def upload_logo(
    program_id: uuid.UUID, request: Request, _admin: TenantAdmin, session: TenantSession
) -> ProgramOut:
    """The card's logo: the image itself as the body (PNG, JPEG or WebP, at most 256 KB),
    replacing the one before. Guests' pages load it from `/app/<network>/logo`."""
    kind = service.logo_type(request.headers.get("content-type", ""))
    data = await read_limited(request, MAX_LOGO_BYTES)
    return _out(*await service.set_logo(session, program_id, kind, data))


@router.delete(
    "/api/loyalty/programs/{program_id}/logo",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(ProgramNotFound),
)
async def remove_logo(
    program_id: uuid.UUID, _admin: TenantAdmin, session: TenantSession
) -> Response:
    """The card goes without a logo (nothing to remove is no error)."""
    await service.remove_logo(session, program_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
