"""Programme configuration for the tenant admin: type, mode, settings, levels, design."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record, snapshot
from maxloyalty.identity.dependencies import Authorize, TenantSession
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit import jobs
from maxloyalty.kit.errors import NotFound, problem_responses
from maxloyalty.kit.pagination import Page, Paging, make_page, paginate
from maxloyalty.loyalty import service
from maxloyalty.loyalty.models import LoyaltySystem
from maxloyalty.loyalty.schemas import (
    LevelIn,
    LevelOut,
    ProgramCreate,
    ProgramOut,
    ProgramSettings,
)
from maxloyalty.loyalty.tasks import REEVALUATE_JOB

router = APIRouter(tags=["loyalty programme"], responses=problem_responses(401, 403, 404, 422))
Admin = Annotated[Principal, Depends(Authorize(Role.RESTAURANT_ADMIN))]
Staff = Annotated[Principal, Depends(Authorize(Role.RESTAURANT_ADMIN, Role.MANAGER, Role.CASHIER))]


async def _out(session: AsyncSession, system: LoyaltySystem) -> ProgramOut:
    out = ProgramOut.model_validate(system)
    out.levels = [LevelOut.model_validate(lv) for lv in await service.levels_of(session, system.id)]
    return out


async def _program(session: AsyncSession, program_id: uuid.UUID) -> LoyaltySystem:
    system = await session.get(LoyaltySystem, program_id)
    if system is None:
        raise NotFound("No such programme.", code="program_not_found")
    return system


def _specs(levels: list[LevelIn]) -> list[service.LevelSpec]:
    return [service.LevelSpec(**level.model_dump()) for level in levels]


@router.get("/api/loyalty/programs")
async def list_programs(_staff: Staff, session: TenantSession, paging: Paging) -> Page[ProgramOut]:
    found = await session.scalars(paginate(select(LoyaltySystem), LoyaltySystem.id, paging))
    rows, cursor = make_page(list(found), paging)
    return Page(items=[await _out(session, s) for s in rows], next_cursor=cursor)


@router.post("/api/loyalty/programs", status_code=201, responses=problem_responses(409))
async def create_program(body: ProgramCreate, admin: Admin, session: TenantSession) -> ProgramOut:
    assert admin.tenant_id is not None
    settings = body.model_dump(
        exclude={"type", "mode", "restaurant_id", "levels"}, exclude_none=True
    )
    system = await service.create_program(
        session,
        admin.tenant_id,
        type=body.type,
        mode=body.mode,
        restaurant_id=body.restaurant_id,
        levels=_specs(body.levels) if body.levels else None,
        **settings,
    )
    await session.commit()
    return await _out(session, system)


@router.patch("/api/loyalty/programs/{program_id}")
async def update_program(
    program_id: uuid.UUID, body: ProgramSettings, _admin: Admin, session: TenantSession
) -> ProgramOut:
    system = await _program(session, program_id)
    before = snapshot(system)
    for field, value in body.model_dump(exclude_unset=True).items():
        if value is not None or field in {"discount_cap_percent", "rolling_days"}:
            setattr(system, field, value)
    await session.flush()
    await session.refresh(system)
    await record(
        session,
        "program.updated",
        "loyalty_system",
        system.id,
        before=before,
        after=snapshot(system),
    )
    if (
        before["level_metric"] != system.level_metric.value
        or before["rolling_days"] != system.rolling_days
    ):
        await jobs.enqueue(
            session,
            REEVALUATE_JOB,
            {"tenant_id": str(system.tenant_id), "program_id": str(system.id)},
        )
    await session.commit()
    return await _out(session, system)


@router.put("/api/loyalty/programs/{program_id}/levels")
async def replace_levels(
    program_id: uuid.UUID, body: list[LevelIn], _admin: Admin, session: TenantSession
) -> ProgramOut:
    """Replace the levels; every card is then re-evaluated in the background."""
    system = await _program(session, program_id)
    await service.replace_levels(session, system, _specs(body))
    await jobs.enqueue(
        session, REEVALUATE_JOB, {"tenant_id": str(system.tenant_id), "program_id": str(system.id)}
    )
    await session.commit()
    return await _out(session, system)
