"""The reward catalogue and buying a reward with points. One rule says what is on offer,
for the guests' catalogue and for the purchase alike."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record, snapshot
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.db import for_update
from maxloyalty.kit.events import publish
from maxloyalty.kit.pagination import PageParams, paginate
from maxloyalty.ledger.models import TxType
from maxloyalty.ledger.schemas import Outcome, PostedTransaction
from maxloyalty.ledger.service import core
from maxloyalty.ledger.service.context import Context, claim_with_card
from maxloyalty.ledger.service.idempotency import Replay, request_hash
from maxloyalty.rewards.errors import (
    GuestRequired,
    RequiredField,
    RewardNotFound,
    RewardOutOfStock,
    RewardUnavailable,
)
from maxloyalty.rewards.models import RedemptionItem
from maxloyalty.rewards.schemas import RewardBought, RewardIn, RewardRedeemed

# Fields a PATCH may not clear with null.
_REQUIRED = frozenset({"name", "points_price", "is_active", "restaurant_ids"})


def on_offer(now: datetime) -> ColumnElement[bool]:
    """Active and inside its dates. Stock and restaurants are judged where they apply."""
    return and_(
        RedemptionItem.is_active.is_(True),
        or_(RedemptionItem.active_from.is_(None), RedemptionItem.active_from <= now),
        or_(RedemptionItem.active_to.is_(None), RedemptionItem.active_to > now),
    )


async def list_rewards(
    session: AsyncSession, principal: Principal, paging: PageParams, now: datetime
) -> list[RedemptionItem]:
    """Staff see the whole catalogue; guests see what is on offer now and in stock. In the
    order the rewards were added (the cursor's order)."""
    query = select(RedemptionItem)
    if principal.role is Role.GUEST:
        query = query.where(
            on_offer(now), or_(RedemptionItem.stock.is_(None), RedemptionItem.stock > 0)
        )
    return list(await session.scalars(paginate(query, RedemptionItem.id, paging)))


async def get_reward(session: AsyncSession, item_id: uuid.UUID) -> RedemptionItem:
    item = await session.get(RedemptionItem, item_id)
    if item is None:
        raise RewardNotFound()
    return item


async def create_reward(
    session: AsyncSession, tenant_id: uuid.UUID, data: RewardIn
) -> RedemptionItem:
    item = RedemptionItem(tenant_id=tenant_id, **data.model_dump())
    session.add(item)
    await session.flush()
    await record(session, "reward.created", "redemption_item", item.id, after=snapshot(item))
    return item


async def update_reward(
    session: AsyncSession, item_id: uuid.UUID, changes: dict[str, Any]
) -> RedemptionItem:
    """Apply the fields given (the PATCH rule: null clears an optional field and is refused
    for a required one)."""
    item = await get_reward(session, item_id)
    before = snapshot(item)
    for field, value in changes.items():
        if value is None and field in _REQUIRED:
            raise RequiredField(f"{field} cannot be null.")
        setattr(item, field, value)
    await session.flush()
    await session.refresh(item)
    await record(
        session, "reward.updated", "redemption_item", item.id, before=before, after=snapshot(item)
    )
    return item


def buyer(principal: Principal, guest_id: uuid.UUID | None) -> uuid.UUID:
    """Whose points buy: guests buy for themselves; staff name the guest."""
    named = principal.subject if principal.role is Role.GUEST else guest_id
    if named is None:
        raise GuestRequired()
    return named


async def redeem(
    ctx: Context, guest_id: uuid.UUID, item_id: uuid.UUID, idempotency_key: str
) -> Outcome[RewardRedeemed]:
    """Buy the reward with the guest's points: a REDEMPTION that names the item, stock
    taken under the item's lock."""
    outcome = await claim_with_card(
        ctx,
        guest_id,
        kind="REWARD",
        fingerprint=request_hash("reward", str(guest_id), str(item_id), str(ctx.restaurant.id)),
        idempotency_key=idempotency_key,
    )
    if isinstance(outcome, Replay):
        return Outcome(RewardRedeemed.model_validate(outcome.response), outcome.status_code)
    claimed, card = outcome
    found = (
        await ctx.session.execute(
            for_update(
                select(RedemptionItem, on_offer(ctx.now)).where(RedemptionItem.id == item_id)
            )
        )
    ).one_or_none()
    if found is None:
        raise RewardNotFound()
    item, offered = found
    if not offered or (item.restaurant_ids and ctx.restaurant.id not in item.restaurant_ids):
        raise RewardUnavailable()
    if item.stock is not None:
        if item.stock <= 0:
            raise RewardOutOfStock()
        await ctx.session.execute(
            update(RedemptionItem)
            .where(RedemptionItem.id == item.id)
            .values(stock=RedemptionItem.stock - 1)
        )
    entry = ctx.entry(claimed.id, TxType.REDEMPTION, reward_item_id=item.id, reason=item.name)
    tx = await core.debit(ctx.session, card, entry, item.points_price)
    done = Outcome(
        RewardRedeemed(
            operation_id=claimed.id,
            card_id=card.id,
            reward=RewardBought(id=item.id, name=item.name, points_price=item.points_price),
            transactions=[PostedTransaction.of(tx)],
            balance=card.balance,
        )
    )
    answer = done.dump()
    claimed.card_id, claimed.response = card.id, answer
    await ctx.session.flush()
    await record(ctx.session, "ledger.reward_redeemed", "guest_card", card.id, after=answer)
    await publish(ctx.session, ctx.tenant.id, "transaction.created", answer)
    return done
