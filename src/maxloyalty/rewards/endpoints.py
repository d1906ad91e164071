"""The reward catalogue: admins manage it, staff and guests see it, a reward is bought with
points (a REDEMPTION that names the item)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import or_, select

from maxloyalty.audit.service import record, snapshot
from maxloyalty.identity.dependencies import Authorize, TenantSession
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.errors import AppError, NotFound, problem_responses
from maxloyalty.kit.pagination import Page, Paging, make_page, paginate
from maxloyalty.ledger import extras, operations
from maxloyalty.ledger.endpoints import IdempotencyKey
from maxloyalty.ledger.idempotency import require_key
from maxloyalty.rewards.models import RedemptionItem
from maxloyalty.rewards.schemas import RedeemRequest, RewardIn, RewardOut, RewardUpdate

router = APIRouter(tags=["rewards"], responses=problem_responses(401, 403, 404, 422))
Admin = Annotated[Principal, Depends(Authorize(Role.RESTAURANT_ADMIN))]
Viewer = Annotated[
    Principal,
    Depends(Authorize(Role.RESTAURANT_ADMIN, Role.MANAGER, Role.CASHIER, Role.GUEST, Role.SYSTEM)),
]
Redeemer = Viewer


@router.get("/api/rewards")
async def list_rewards(
    principal: Viewer, session: TenantSession, paging: Paging
) -> Page[RewardOut]:
    """Staff see the whole catalogue; guests see what is on offer now. In the order the
    rewards were added (the cursor's order)."""
    query = select(RedemptionItem)
    if principal.role is Role.GUEST:
        now = utcnow()
        query = query.where(
            RedemptionItem.is_active.is_(True),
            or_(RedemptionItem.active_from.is_(None), RedemptionItem.active_from <= now),
            or_(RedemptionItem.active_to.is_(None), RedemptionItem.active_to > now),
            or_(RedemptionItem.stock.is_(None), RedemptionItem.stock > 0),
        )
    found = list(await session.scalars(paginate(query, RedemptionItem.id, paging)))
    rows, cursor = make_page(found, paging)
    return Page(items=[RewardOut.model_validate(item) for item in rows], next_cursor=cursor)


@router.post("/api/rewards", status_code=201)
async def create_reward(body: RewardIn, admin: Admin, session: TenantSession) -> RewardOut:
    assert admin.tenant_id is not None
    item = RedemptionItem(tenant_id=admin.tenant_id, **body.model_dump())
    session.add(item)
    await session.flush()
    await record(session, "reward.created", "redemption_item", item.id, after=snapshot(item))
    await session.commit()
    return RewardOut.model_validate(item)


@router.patch("/api/rewards/{item_id}")
async def update_reward(
    item_id: uuid.UUID, body: RewardUpdate, _admin: Admin, session: TenantSession
) -> RewardOut:
    item = await session.get(RedemptionItem, item_id)
    if item is None:
        raise NotFound("No such reward.", code="reward_not_found")
    before = snapshot(item)
    for field, value in body.model_dump(exclude_unset=True).items():
        if value is None and field in {"name", "points_price", "is_active", "restaurant_ids"}:
            raise AppError(f"{field} cannot be null.", code="validation_error", status=422)
        setattr(item, field, value)
    await session.flush()
    await session.refresh(item)
    await record(
        session, "reward.updated", "redemption_item", item.id, before=before, after=snapshot(item)
    )
    await session.commit()
    return RewardOut.model_validate(item)


@router.post(
    "/api/rewards/{item_id}/redeem", status_code=201, responses=problem_responses(400, 409)
)
async def redeem_reward(
    item_id: uuid.UUID,
    body: RedeemRequest,
    principal: Redeemer,
    session: TenantSession,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Buy the reward with the guest's points (guests buy for themselves)."""
    key = require_key(idempotency_key)
    guest_id = principal.subject if principal.role is Role.GUEST else body.guest_id
    if guest_id is None:
        raise AppError("Name the guest (guest_id).", code="guest_required", status=422)
    ctx = await operations.open_context(session, principal, body.restaurant_id, utcnow())
    status, answer = await extras.redeem_reward(ctx, guest_id, item_id, key)
    await session.commit()
    return JSONResponse(answer, status_code=status)
