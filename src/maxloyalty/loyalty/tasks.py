"""Background work on levels: re-evaluating every card after the levels change."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from maxloyalty.guests.models import GuestCard
from maxloyalty.kit import jobs
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import Database
from maxloyalty.ledger.core import lock_card
from maxloyalty.loyalty.models import LoyaltySystem, TierChangeReason
from maxloyalty.loyalty.service import levels_of, reevaluate

REEVALUATE_JOB = "loyalty.reevaluate_levels"
BATCH = 500


@jobs.registry.job(REEVALUATE_JOB)
async def reevaluate_cards(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    tenant_id, program_id = uuid.UUID(payload["tenant_id"]), uuid.UUID(payload["program_id"])
    await reevaluate_program(ctx.db, tenant_id, program_id, TierChangeReason.LEVELS_EDITED)


async def reevaluate_program(
    db: Database,
    tenant_id: uuid.UUID,
    program_id: uuid.UUID,
    reason: TierChangeReason,
    now: datetime | None = None,
) -> None:
    """Move every card of the programme to the level its spend now earns, in batches of
    short transactions (each card locked as any ledger operation would)."""
    after: uuid.UUID | None = None
    while True:
        async with db.transaction(tenant_id) as session:
            query = select(GuestCard.id).where(GuestCard.loyalty_system_id == program_id)
            if after is not None:
                query = query.where(GuestCard.id > after)
            ids = list(await session.scalars(query.order_by(GuestCard.id).limit(BATCH)))
            if not ids:
                return
            system = await session.get(LoyaltySystem, program_id)
            if system is None:
                return
            levels = await levels_of(session, program_id)
            moment = now or utcnow()
            for card_id in ids:
                card = await lock_card(session, card_id)
                await reevaluate(session, system, levels, card, moment, reason)
        after = ids[-1]
