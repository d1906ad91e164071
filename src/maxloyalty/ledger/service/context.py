"""Where and when a ledger operation happens (`Context`), and the first step every
operation takes: claim it exactly once, then lock the guest's usable card."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.guests.models import GuestCard
from maxloyalty.guests.service.cards import (
    card_for_guest,
    ensure_restaurant,
    ensure_usable,
)
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.ledger.models import LedgerOperation, TxChannel, TxSource, TxType
from maxloyalty.ledger.service import core
from maxloyalty.ledger.service.idempotency import Replay, claim
from maxloyalty.loyalty.models import LoyaltySystem
from maxloyalty.loyalty.service import program_for
from maxloyalty.network.errors import RestaurantNotFound
from maxloyalty.network.models import Restaurant, Tenant
from maxloyalty.network.service.restaurants import restaurant_row, tenant_row


def channel_for(principal: Principal) -> TxChannel:
    """The channel a caller's rows record. A till's integration names its own kind instead
    (`open_context(channel=...)`): its principal is a SYSTEM one like any API key's."""
    if principal.role is Role.GUEST:
        return TxChannel.GUEST_APP
    if principal.role is Role.SYSTEM:
        return TxChannel.POS_API
    return TxChannel.STAFF


class Context:
    """What every operation needs to know about where and when it happens."""

    def __init__(
        self,
        session: AsyncSession,
        principal: Principal,
        now: datetime,
        system: LoyaltySystem,
        tenant: Tenant,
        restaurant: Restaurant,
        channel: TxChannel,
    ) -> None:
        self.session, self.principal, self.now = session, principal, now
        self.system, self.tenant, self.restaurant = system, tenant, restaurant
        self.channel = channel
        # The till's hold this operation settles: its points are the ones to spend.
        self.spending_hold: uuid.UUID | None = None

    def expiry(self, activates_at: datetime | None = None) -> datetime:
        start = activates_at or self.now
        return core.end_of_day(
            start + timedelta(days=self.system.expiry_days), self.tenant.timezone
        )

    def activation(self) -> datetime | None:
        if not self.system.pending_days:
            return None
        return self.now + timedelta(days=self.system.pending_days)

    def entry(self, operation_id: uuid.UUID, type: TxType, **fields: Any) -> core.Entry:
        source = TxSource.MANUAL if type in {TxType.MANUAL, TxType.ADJUSTMENT} else TxSource.POS
        return core.Entry(
            operation_id=operation_id,
            type=type,
            source=fields.pop("source", source),
            channel=self.channel,
            now=self.now,
            restaurant_id=self.restaurant.id,
            created_by_user_id=self.principal.subject
            if self.principal.role is not Role.SYSTEM
            else None,
            source_id=fields.pop("source_id", str(self.principal.subject)),
            **fields,
        )


async def open_context(
    session: AsyncSession,
    principal: Principal,
    restaurant_id: uuid.UUID,
    now: datetime,
    channel: TxChannel | None = None,
) -> Context:
    """The context of `principal`'s operations; `channel` by default as `channel_for` says."""
    ensure_restaurant(principal, restaurant_id)
    restaurant = await restaurant_row(session, restaurant_id)
    if restaurant is None:
        raise RestaurantNotFound()
    tenant = await tenant_row(session, restaurant.tenant_id)
    assert tenant is not None
    system = await program_for(session, restaurant_id)
    return Context(
        session, principal, now, system, tenant, restaurant, channel or channel_for(principal)
    )


async def claim_with_card(
    ctx: Context,
    guest_id: uuid.UUID,
    *,
    kind: str,
    fingerprint: str,
    idempotency_key: str,
    business_key: str | None = None,
) -> tuple[LedgerOperation, GuestCard] | Replay:
    """Claim the operation (or get the answer to replay), then lock the guest's usable card."""
    claimed = await claim(
        ctx.session,
        ctx.tenant.id,
        kind=kind,
        fingerprint=fingerprint,
        idempotency_key=idempotency_key,
        business_key=business_key,
        created_by=ctx.principal.subject,
    )
    if isinstance(claimed, Replay):
        return claimed
    card = await card_for_guest(ctx.session, ctx.system, guest_id, ctx.restaurant.id, lock=True)
    ensure_usable(card)
    await core.settle_due(ctx.session, card, ctx.now)
    return claimed, card
