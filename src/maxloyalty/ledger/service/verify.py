"""`maxloyalty ledger verify`: the ledger's invariants, checked in one consistent snapshot."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.kit.db import Database
from maxloyalty.network.errors import TenantNotFound
from maxloyalty.network.models import Tenant

_CARDS = text(
    """
    WITH tx AS (
        SELECT card_id, sum(amount) FILTER (WHERE status IN ('COMPLETED', 'REVERSED')) AS completed
        FROM point_transactions GROUP BY card_id
    ), lots AS (
        SELECT card_id,
               sum(remaining) FILTER (WHERE activated) AS active,
               sum(remaining) FILTER (WHERE NOT activated) AS pending
        FROM point_lots GROUP BY card_id
    )
    SELECT c.id, c.balance, c.pending_balance,
           coalesce(tx.completed, 0) AS completed,
           coalesce(lots.active, 0) AS active,
           coalesce(lots.pending, 0) AS pending
    FROM guest_cards c
    LEFT JOIN tx ON tx.card_id = c.id
    LEFT JOIN lots ON lots.card_id = c.id
    WHERE c.balance <> coalesce(tx.completed, 0)
       OR c.balance <> coalesce(lots.active, 0)
       OR c.pending_balance <> coalesce(lots.pending, 0)
    """
)
_LOTS = text(
    """
    SELECT l.id, l.card_id, l.amount, l.remaining, coalesce(a.drawn, 0) AS drawn
    FROM point_lots l
    LEFT JOIN (SELECT lot_id, sum(amount) AS drawn FROM lot_allocations GROUP BY lot_id) a
           ON a.lot_id = l.id
    WHERE l.remaining <> l.amount - coalesce(a.drawn, 0)
    """
)
_COUNT = text("SELECT count(*) FROM guest_cards")


@dataclass(frozen=True)
class Mismatch:
    card_id: uuid.UUID
    detail: str


async def verify_tenant(session: AsyncSession) -> tuple[int, list[Mismatch]]:
    """Cards checked and mismatches found, for the session's tenant. Run it in a
    REPEATABLE READ transaction so every sum sees the same moment."""
    found = [
        Mismatch(
            r.id,
            f"balance {r.balance}, completed transactions {r.completed}, active lots "
            f"{r.active}; pending {r.pending_balance}, pending lots {r.pending}",
        )
        for r in await session.execute(_CARDS)
    ]
    found += [
        Mismatch(
            r.card_id, f"lot {r.id}: amount {r.amount} - allocations {r.drawn} != {r.remaining}"
        )
        for r in await session.execute(_LOTS)
    ]
    checked = int(await session.scalar(_COUNT) or 0)
    return checked, found


async def verify_all(
    db: Database, tenant: str | None = None
) -> AsyncIterator[tuple[str, int, list[Mismatch]]]:
    """(tenant name, cards checked, mismatches) for each tenant, or the one named."""
    async with db.platform_session() as platform:
        query = select(Tenant).order_by(Tenant.name)
        if tenant:
            try:
                query = query.where(Tenant.id == uuid.UUID(tenant))
            except ValueError:
                query = query.where(Tenant.slug == tenant)
        tenants = list(await platform.scalars(query))
    if tenant and not tenants:
        raise TenantNotFound(f"No tenant {tenant!r}.")
    for row in tenants:
        async with db.session(row.id) as session:
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            checked, mismatches = await verify_tenant(session)
            await session.rollback()
        yield row.name, checked, mismatches
