"""`maxloyalty pii reencrypt`: after the PII key changes (the old one moved to
MAXLOYALTY_PREVIOUS_PII_KEYS), rewrite every stored secret under the current key, so the old
key can then be dropped."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.kit.crypto import keyring
from maxloyalty.kit.db import Database
from maxloyalty.network.models import Tenant

# Table, encrypted columns. `users` is global; the others are read tenant by tenant.
GLOBAL: dict[str, tuple[str, ...]] = {"users": ("phone_encrypted", "email_encrypted")}
PER_TENANT: dict[str, tuple[str, ...]] = {
    "api_keys": ("signing_secret",),
    "webhook_endpoints": ("secret", "previous_secret"),
}


async def _rewrite(session: AsyncSession, table: str, columns: tuple[str, ...]) -> int:
    ring, changed = keyring(), 0
    rows = await session.execute(text(f"SELECT id, {', '.join(columns)} FROM {table}"))  # noqa: S608 - fixed names
    for row in rows.all():
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
