"""A guest's own profile in a network: names, birthday, children, channel, consents."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.errors import BirthDateLocked, ChildNotFound, ProfileNotFound
from maxloyalty.guests.models import GuestProfile
from maxloyalty.guests.schemas import (
    ChildIn,
    ChildOut,
    ConsentIn,
    ConsentOut,
    ProfileCardOut,
    ProfileFields,
    ProfileOut,
    ProfileUpdate,
)
from maxloyalty.guests.service import cards as service
from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, Guest
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.identity.errors import RoleForbidden
from maxloyalty.kit.errors import RequiredField, problem_responses

router = APIRouter(prefix="/api/me", tags=["me"], responses=problem_responses(*SIGNED_IN_REFUSALS))


async def _out(session: AsyncSession, profile: GuestProfile) -> ProfileOut:
    children = await service.children_of(session, profile)
    cards = await service.cards_of(session, profile)
    return ProfileOut(
        **dict(ProfileFields.model_validate(profile)),
        children=[ChildOut.model_validate(c) for c in children],
        cards=[ProfileCardOut.model_validate(c) for c in cards],
    )


@router.get("/profile", responses=problem_responses(ProfileNotFound))
async def get_profile(principal: Guest, session: TenantSession) -> ProfileOut:
    return await _out(session, await service.own_profile(session, principal))


@router.patch(
    "/profile", responses=problem_responses(ProfileNotFound, BirthDateLocked, RequiredField)
)
async def update_profile(
    body: ProfileUpdate, principal: Guest, session: TenantSession
) -> ProfileOut:
    """Birthday is set once (it earns a bonus every year); staff can correct it."""
    return await _out(session, await service.update_profile(session, principal, body))


@router.post("/children", status_code=201, responses=problem_responses(ProfileNotFound))
async def add_child(body: ChildIn, principal: Guest, session: TenantSession) -> ProfileOut:
    return await _out(session, await service.add_child(session, principal, body))


@router.delete(
    "/children/{child_id}",
    status_code=204,
    responses=problem_responses(ProfileNotFound, ChildNotFound),
)
async def remove_child(child_id: uuid.UUID, principal: Guest, session: TenantSession) -> Response:
    await service.remove_child(session, principal, child_id)
    return Response(status_code=204)


@router.post("/consents", status_code=201, responses=problem_responses(RoleForbidden))
async def record_consent(body: ConsentIn, principal: Guest, session: TenantSession) -> ConsentOut:
    """Give or withdraw a consent; each decision is kept with its time and address."""
    return ConsentOut.model_validate(await service.record_consent(session, principal, body))
