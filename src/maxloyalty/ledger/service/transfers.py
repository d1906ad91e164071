"""Moving points between cards, through the same idempotency and card locks as cashier
operations."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.config import Settings
from maxloyalty.guests.errors import CardNotFound, GuestNotFound
from maxloyalty.guests.models import CardStatus, GuestCard
from maxloyalty.guests.service.cards import card_for_guest, ensure_usable, lock_card
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.ratelimit import RateLimiter
from maxloyalty.ledger.errors import GuestTransfersDisabled, SameCard
from maxloyalty.ledger.models import TxSource, TxType
from maxloyalty.ledger.schemas import Outcome, PostedTransaction, TransferOut
from maxloyalty.ledger.service import core
from maxloyalty.ledger.service.context import Context
from maxloyalty.ledger.service.idempotency import Replay, claim, request_hash
from maxloyalty.loyalty.models import LoyaltySystem


def ensure_own_points(principal: Principal, guest_id: uuid.UUID) -> None:
    """A guest moves only their own points: another guest's id is, to them, no guest at
    all. Checked before anything else of the request is looked at."""
    if principal.role is Role.GUEST and principal.subject != guest_id:
        raise GuestNotFound()


async def friends_card(
    session: AsyncSession,
    limiter: RateLimiter,
    settings: Settings,
    principal: Principal,
    system: LoyaltySystem,
    code: str,
) -> GuestCard:
    """The active card of the programme a guest names by its 6-digit code, to send points
    to. A guest may ask a few times an hour: codes are not theirs to collect."""
    await limiter.hit(settings.rate_limit_friend_lookup, "friend-lookup", str(principal.subject))
    card = await session.scalar(
        select(GuestCard).where(
            GuestCard.code == code,
            GuestCard.status == CardStatus.ACTIVE,
            GuestCard.loyalty_system_id == system.id,
        )
    )
    if card is None:
        raise CardNotFound("No card with this code.")
    return card


async def transfer(
    ctx: Context,
    guest_id: uuid.UUID,
    to_card_id: uuid.UUID,
    points: int,
    idempotency_key: str,
) -> Outcome[TransferOut]:
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
        return Outcome(TransferOut.model_validate(claimed.response), claimed.status_code)
    source_id = (await card_for_guest(ctx.session, ctx.system, guest_id, ctx.restaurant.id)).id
    target_row = await ctx.session.get(GuestCard, to_card_id)
    if target_row is None:
        raise CardNotFound("No such card to transfer to.")
    if target_row.id == source_id:
        raise SameCard()
    if target_row.user_id != guest_id and not ctx.system.allow_guest_transfers:
        raise GuestTransfersDisabled()
    # Lock in id order, so two opposite transfers cannot deadlock.
    first, second = sorted([source_id, target_row.id])
    locked = {first: await lock_card(ctx.session, first)}
    locked[second] = await lock_card(ctx.session, second)
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
    done = Outcome(
        TransferOut(
            operation_id=claimed.id,
            from_card_id=source.id,
            to_card_id=target.id,
            points=points,
            transactions=[PostedTransaction.of(out), PostedTransaction.of(into)],
            balance=source.balance,
        )
    )
    claimed.card_id, claimed.response = source.id, done.dump()
    await ctx.session.flush()
    await record(ctx.session, "ledger.transfer", "guest_card", source.id, after=claimed.response)
    return done
