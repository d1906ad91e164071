"""The reward catalogue: admins manage it, staff and guests see it, a reward is bought with
points (a REDEMPTION that names the item)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from maxloyalty.guests.errors import CardBlocked, CardNotFound
from maxloyalty.identity.auth import SIGNED_IN_REFUSALS, TenantAdmin, TenantMember
from maxloyalty.identity.dependencies import TenantSession
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import InvalidCursor, ValidationFailed, problem_responses
from maxloyalty.kit.pagination import Page, Paging, make_page
from maxloyalty.ledger.errors import (
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    InsufficientPoints,
    OperationInFlight,
)
from maxloyalty.ledger.schemas import IdempotencyKey
from maxloyalty.ledger.service import operations
from maxloyalty.ledger.service.idempotency import require_key, status_of
from maxloyalty.loyalty.errors import ProgramNotFound
from maxloyalty.network.errors import RestaurantForbidden, RestaurantNotFound
from maxloyalty.rewards import service
from maxloyalty.rewards.errors import (
    GuestRequired,
    RequiredField,
    RewardNotFound,
    RewardOutOfStock,
    RewardUnavailable,
)
from maxloyalty.rewards.schemas import (
    RedeemRequest,
    RewardIn,
    RewardOut,
    RewardRedeemed,
    RewardUpdate,
)

router = APIRouter(tags=["rewards"], responses=problem_responses(*SIGNED_IN_REFUSALS))


@router.get("/api/rewards", responses=problem_responses(InvalidCursor))
async def list_rewards(
    principal: TenantMember, session: TenantSession, paging: Paging
) -> Page[RewardOut]:
    """Staff see the whole catalogue; guests see what is on offer now. In the order the
    rewards were added (the cursor's order)."""
    found = await service.list_rewards(session, principal, paging, utcnow())
    rows, cursor = make_page(found, paging)
    return Page(items=[RewardOut.model_validate(item) for item in rows], next_cursor=cursor)


@router.post("/api/rewards", status_code=201, responses=problem_responses(ValidationFailed))
async def create_reward(body: RewardIn, admin: TenantAdmin, session: TenantSession) -> RewardOut:
    assert admin.tenant_id is not None
    item = await service.create_reward(session, admin.tenant_id, body)
    return RewardOut.model_validate(item)


@router.patch("/api/rewards/{item_id}", responses=problem_responses(RewardNotFound, RequiredField))
async def update_reward(
    item_id: uuid.UUID, body: RewardUpdate, _admin: TenantAdmin, session: TenantSession
) -> RewardOut:
    item = await service.update_reward(session, item_id, body.model_dump(exclude_unset=True))
    return RewardOut.model_validate(item)


@router.post(
    "/api/rewards/{item_id}/redeem",
    status_code=201,
    responses=problem_responses(
        400,
        RewardNotFound,
        RewardUnavailable,
        RewardOutOfStock,
        GuestRequired,
        RestaurantNotFound,
        RestaurantForbidden,
        ProgramNotFound,
        CardNotFound,
        CardBlocked,
        InsufficientPoints,
        IdempotencyKeyRequired,
        IdempotencyKeyReused,
        OperationInFlight,
    ),
)
async def redeem_reward(
    item_id: uuid.UUID,
    body: RedeemRequest,
    principal: TenantMember,
    session: TenantSession,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> RewardRedeemed:
    """Buy the reward with the guest's points (guests buy for themselves)."""
    key = require_key(idempotency_key)
    guest_id = service.buyer(principal, body.guest_id)
    ctx = await operations.open_context(session, principal, body.restaurant_id, utcnow())
    outcome = await service.redeem(ctx, guest_id, item_id, key)
    response.status_code = status_of(outcome, 201)
    return outcome.answer
