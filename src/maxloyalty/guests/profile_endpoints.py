"""A guest's own profile in a network: names, birthday, children, channel, consents."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record, snapshot
from maxloyalty.guests.models import Channel, Gender, GuestCard, GuestChild, GuestProfile
from maxloyalty.guests.schemas import Name
from maxloyalty.identity.auth import Guest
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.identity.models import Consent, ConsentKind
from maxloyalty.identity.principal import Principal
from maxloyalty.kit import context
from maxloyalty.kit.errors import AppError, NotFound, problem_responses
from maxloyalty.kit.timestamps import rfc3339

router = APIRouter(prefix="/api/me", tags=["me"], responses=problem_responses(401, 403, 404, 422))


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: Name | None = None
    last_name: Name | None = None
    middle_name: Name | None = None
    gender: Gender | None = None
    birth_date: date | None = None
    city: str | None = Field(default=None, max_length=120)
    avatar_url: str | None = Field(default=None, max_length=500)
    telegram_username: str | None = Field(default=None, max_length=64)
    preferred_channel: Channel | None = None


class ChildIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    birth_date: date | None = None


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ConsentKind
    granted: bool


async def _profile(session: AsyncSession, principal: Principal) -> GuestProfile:
    profile = await session.scalar(
        select(GuestProfile).where(GuestProfile.user_id == principal.subject)
    )
    if profile is None:
        raise NotFound("You have no profile in this network yet.", code="profile_not_found")
    return profile


async def _out(session: AsyncSession, profile: GuestProfile) -> dict[str, Any]:
    children = await session.scalars(
        select(GuestChild).where(GuestChild.profile_id == profile.id).order_by(GuestChild.name)
    )
    cards = await session.scalars(select(GuestCard).where(GuestCard.user_id == profile.user_id))
    data = snapshot(profile)
    data["children"] = [
        {
            "id": str(c.id),
            "name": c.name,
            "birth_date": c.birth_date.isoformat() if c.birth_date else None,
        }
        for c in children
    ]
    data["cards"] = [
        {"id": str(c.id), "code": c.code, "balance": c.balance, "status": c.status.value}
        for c in cards
    ]
    return data


@router.get("/profile")
async def get_profile(principal: Guest, session: TenantSession) -> dict[str, Any]:
    return await _out(session, await _profile(session, principal))


@router.patch("/profile", responses=problem_responses(409))
async def update_profile(
    body: ProfileUpdate, principal: Guest, session: TenantSession
) -> dict[str, Any]:
    """Birthday is set once (it earns a bonus every year); staff can correct it."""
    profile = await _profile(session, principal)
    changes = body.model_dump(exclude_unset=True)
    if (
        "birth_date" in changes
        and profile.birth_date
        and changes["birth_date"] != profile.birth_date
    ):
        raise AppError("The birthday is already set.", code="birth_date_locked", status=409)
    for field, value in changes.items():
        setattr(profile, field, value)
    await session.flush()
    await session.refresh(profile)
    # The names of what changed, not the values: the log is append-only, and an erasure
    # must not leave the person's names and birthday behind in it.
    await record(
        session,
        "guest.profile_updated",
        "guest_profile",
        profile.id,
        after={"fields": sorted(changes)},
    )
    return await _out(session, profile)


@router.post("/children", status_code=201)
async def add_child(body: ChildIn, principal: Guest, session: TenantSession) -> dict[str, Any]:
    profile = await _profile(session, principal)
    child = GuestChild(tenant_id=profile.tenant_id, profile_id=profile.id, **body.model_dump())
    session.add(child)
    await session.flush()
    await record(session, "guest.child_added", "guest_child", child.id)
    return await _out(session, profile)


@router.delete("/children/{child_id}", status_code=204)
async def remove_child(child_id: uuid.UUID, principal: Guest, session: TenantSession) -> Response:
    profile = await _profile(session, principal)
    child = await session.get(GuestChild, child_id)
    if child is None or child.profile_id != profile.id:
        raise NotFound("No such child.", code="child_not_found")
    await session.delete(child)
    await record(session, "guest.child_removed", "guest_child", child_id)
    return Response(status_code=204)


@router.post("/consents", status_code=201)
async def record_consent(
    body: ConsentIn, principal: Guest, session: TenantSession
) -> dict[str, Any]:
    """Give or withdraw a consent; each decision is kept with its time and address."""
    assert principal.tenant_id is not None
    consent = Consent(
        tenant_id=principal.tenant_id,
        user_id=principal.subject,
        kind=body.kind,
        granted=body.granted,
        ip_address=context.client.get().ip,
        source="GUEST_APP",
    )
    session.add(consent)
    await session.flush()
    await record(
        session, "guest.consent", "consent", consent.id, after=body.model_dump(mode="json")
    )
    return {
        "kind": body.kind.value,
        "granted": body.granted,
        "recorded_at": rfc3339(consent.recorded_at),
    }
