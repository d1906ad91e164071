"""Operations beyond the till's check: buying a reward with points, moving points between
cards. Both go through the same idempotency and card locks as cashier operations."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from maxloyalty.audit.service import record
from maxloyalty.guests.models import GuestCard
from maxloyalty.guests.service import card_for_guest, ensure_usable
from maxloyalty.kit.errors import AppError, Forbidden, NotFound
from maxloyalty.kit.events import publish
from maxloyalty.ledger import core
from maxloyalty.ledger.idempotency import Replay, claim, request_hash
from maxloyalty.ledger.models import TxSource, TxType
from maxloyalty.ledger.operations import Context, claim_with_card, tx_out
from maxloyalty.loyalty.models import LoyaltySystem
from maxloyalty.rewards.models import RedemptionItem


async def redeem_reward(
    ctx: Context, guest_id: uuid.UUID, item_id: uuid.UUID, idempotency_key: str
) -> tuple[int, dict[str, Any]]:
    outcome = await claim_with_card(
        ctx,
        guest_id,
        kind="REWARD",
        fingerprint=request_hash("reward", str(guest_id), str(item_id), str(ctx.restaurant.id)),
        idempotency_key=idempotency_key,
    )
    if isinstance(outcome, Replay):
        return outcome.status_code, outcome.response
    claimed, card = outcome
    item = await ctx.session.scalar(
        select(RedemptionItem)
        .where(RedemptionItem.id == item_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if item is None:
        raise NotFound("No such reward.", code="reward_not_found")
    offered = (
        item.is_active
        and (item.active_from is None or item.active_from <= ctx.now)
        and (item.active_to is None or ctx.now < item.active_to)
        and (not item.restaurant_ids or ctx.restaurant.id in item.restaurant_ids)
    )
    if not offered:
        raise AppError(
            "This reward is not offered here now.", code="reward_unavailable", status=409
        )
    if item.stock is not None:
        if item.stock <= 0:
            raise AppError("This reward is out of stock.", code="reward_out_of_stock", status=409)
        await ctx.session.execute(
            update(RedemptionItem)
            .where(RedemptionItem.id == item.id)
            .values(stock=RedemptionItem.stock - 1)
        )
    entry = ctx.entry(claimed.id, TxType.REDEMPTION, reward_item_id=item.id, reason=item.name)
    tx = await core.debit(ctx.session, card, entry, item.points_price)
    answer = {
        "operation_id": str(claimed.id),
        "card_id": str(card.id),
        "reward": {"id": str(item.id), "name": item.name, "points_price": item.points_price},
        "transactions": [tx_out(tx)],
        "balance": card.balance,
    }
    claimed.card_id, claimed.response = card.id, answer
    await ctx.session.flush()
    await record(ctx.session, "ledger.reward_redeemed", "guest_card", card.id, after=answer)
    await publish(ctx.session, ctx.tenant.id, "transaction.created", answer)
    return 201, answer


async def transfer(
    ctx: Context,
    guest_id: uuid.UUID,
    to_card_id: uuid.UUID,
    points: int,
    idempotency_key: str,
) -> tuple[int, dict[str, Any]]:
    """Move points to another card: the same guest's (SEPARATE mode), or another guest's
    when the programme allows it. A TRANSFER pair, the receiving lot expiring afresh."""
    claimed = await claim(
        ctx.session,
        ctx.tenant.id,
        kind="TRANSFER",
        fingerprint=request_hash("transfer", str(guest_id), str(to_card_id), points),
        idempotency_key=idempotency_key,
        created_by=ctx.principal.subject,
    )
    if isinstance(claimed, Replay):
        return claimed.status_code, claimed.response
    source_id = (await card_for_guest(ctx.session, ctx.system, guest_id, ctx.restaurant.id)).id
    target_row = await ctx.session.get(GuestCard, to_card_id)
    if target_row is None:
        raise NotFound("No such card to transfer to.", code="card_not_found")
    if target_row.id == source_id:
        raise AppError("A card cannot transfer to itself.", code="same_card", status=422)
    if target_row.user_id != guest_id and not ctx.system.allow_guest_transfers:
        raise Forbidden(
            "This programme does not allow transfers between guests.",
            code="guest_transfers_disabled",
        )
    # Lock in id order, so two opposite transfers cannot deadlock.
    first, second = sorted([source_id, target_row.id])
    locked = {first: await core.lock_card(ctx.session, first)}
    locked[second] = await core.lock_card(ctx.session, second)
    source, target = locked[source_id], locked[target_row.id]
    ensure_usable(source)
    ensure_usable(target)
    for card in (source, target):
        await core.settle_due(ctx.session, card, ctx.now)
    out = await core.debit(
        ctx.session,
        source,
        ctx.entry(claimed.id, TxType.TRANSFER, reason=f"to card {target.id}"),
        points,
    )
    target_system = await ctx.session.get(LoyaltySystem, target.loyalty_system_id)
    assert target_system is not None
    into = await core.credit(
        ctx.session,
        target,
        ctx.entry(
            claimed.id,
            TxType.TRANSFER,
            reason=f"from card {source.id}",
            reverses_id=out.id,
            source=TxSource.MANUAL,
        ),
        points,
        expires_at=core.end_of_day(
            ctx.now + timedelta(days=target_system.expiry_days), ctx.tenant.timezone
        ),
    )
    answer = {
        "operation_id": str(claimed.id),
        "from_card_id": str(source.id),
        "to_card_id": str(target.id),
        "points": points,
        "transactions": [tx_out(out), tx_out(into)],
        "balance": source.balance,
    }
    claimed.card_id, claimed.response = source.id, answer
    await ctx.session.flush()
    await record(ctx.session, "ledger.transfer", "guest_card", source.id, after=answer)
    return 201, answer
