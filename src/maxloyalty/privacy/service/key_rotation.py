"""`maxloyalty pii reencrypt`: after the PII key changes (the old one moved to
MAXLOYALTY_PREVIOUS_PII_KEYS), rewrite every stored secret under the current key, so the old
key can then be dropped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.kit.crypto import Keyring, keyring
from maxloyalty.kit.db import Database
from maxloyalty.network.models import Tenant

# Table, encrypted columns. `users` is global; the others are read tenant by tenant.
GLOBAL: dict[str, tuple[str, ...]] = {"users": ("phone_encrypted", "email_encrypted")}
PER_TENANT: dict[str, tuple[str, ...]] = {
    "api_keys": ("signing_secret",),
    "webhook_endpoints": ("secret", "previous_secret"),
    "pos_integrations": ("credentials", "webhook_secret"),
    "pos_events": ("personal",),
    "pos_transactions": ("raw",),
    "telegram_bots": ("token", "webhook_secret"),
}
# Rows read at once: the POS tables hold a row per check or event.
BATCH = 500
_NIL = uuid.UUID(int=0)


async def _batches(
    session: AsyncSession, table: str, columns: tuple[str, ...]
) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """The rows with a value in `columns`, BATCH at a time in the order of their ids."""
    query = text(
        f"SELECT id, {', '.join(columns)} FROM {table}"  # noqa: S608 - fixed names
        f" WHERE ({' OR '.join(f'{c} IS NOT NULL' for c in columns)}) AND id > :after"
        " ORDER BY id LIMIT :n"
    )
    after = _NIL
    while rows := (await session.execute(query, {"after": after, "n": BATCH})).all():
        yield rows
        after = rows[-1][0]


async def _rewrite(session: AsyncSession, table: str, columns: tuple[str, ...]) -> int:
    ring, changed = keyring(), 0
    async for rows in _batches(session, table, columns):
        changed += await _rewrite_rows(session, ring, table, columns, rows)
    return changed


async def _rewrite_rows(
    session: AsyncSession,
    ring: Keyring,
    table: str,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
) -> int:
    changed = 0
    for row in rows:
        fresh = {
            column: ring.encrypt(ring.decrypt(value))
            for column, value in zip(columns, row[1:], strict=True)
            if value is not None and ring.needs_rotation(value)
        }
        if fresh:
            assignments = ", ".join(f"{column} = :{column}" for column in fresh)
            await session.execute(
                text(f"UPDATE {table} SET {assignments} WHERE id = :id"),  # noqa: S608 - fixed names
                fresh | {"id": row[0]},
            )
            changed += 1
    return changed


async def reencrypt(db: Database) -> int:
    """Rows rewritten, each table in its own transaction."""
    changed = 0
    for table, columns in GLOBAL.items():
        async with db.transaction() as session:
            changed += await _rewrite(session, table, columns)
    async with db.platform_session() as platform:
        tenants = list(await platform.scalars(select(Tenant.id)))
    for tenant_id in tenants:
        for table, columns in PER_TENANT.items():
            async with db.transaction(tenant_id) as session:
                changed += await _rewrite(session, table, columns)
    return changed
