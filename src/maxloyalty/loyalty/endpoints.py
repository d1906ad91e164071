"""Programme configuration for the tenant admin: type, mode, settings, levels, design."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, Staff, TenantAdmin
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.kit.errors import InvalidCursor, problem_responses
from maxloyalty.kit.pagination import Page, Paging, make_page
from maxloyalty.loyalty import service
from maxloyalty.loyalty.errors import (
    InvalidLevels,
    ProgramExists,
    ProgramNotFound,
    RequiredSetting,
)
from maxloyalty.loyalty.models import LoyaltyLevel, LoyaltySystem
from maxloyalty.loyalty.schemas import (
    LevelIn,
    LevelOut,
    ProgramCreate,
    ProgramOut,
    ProgramSettings,
)
from maxloyalty.network.errors import RestaurantNotFound

router = APIRouter(tags=["loyalty programme"], responses=problem_responses(*SIGNED_IN_REFUSALS))


def _out(system: LoyaltySystem, levels: list[LoyaltyLevel]) -> ProgramOut:
    out = ProgramOut.model_validate(system)
    out.levels = [LevelOut.model_validate(lv) for lv in levels]
    return out


@router.get("/api/loyalty/programs", responses=problem_responses(InvalidCursor))
async def list_programs(_staff: Staff, session: TenantSession, paging: Paging) -> Page[ProgramOut]:
    rows, cursor = make_page(await service.list_programs(session, paging), paging)
    return Page(items=[_out(system, levels) for system, levels in rows], next_cursor=cursor)


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
