"""Alembic environment: runs as the database owner, over asyncpg."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from maxloyalty.kit.db import async_url
from maxloyalty.models import metadata

# Tables that are not ours to model: the job queue's, and monthly partitions.
_FOREIGN_TABLE = re.compile(r"^(pgqueuer.*|\w+_\d{4}_\d{2})$")


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
    if type_ == "table" and reflected and other is None and name and _FOREIGN_TABLE.match(name):
        return False
    table = getattr(obj, "table", None)
    table_name = getattr(table, "name", "") or ""
    return not (reflected and other is None and _FOREIGN_TABLE.match(table_name))


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=_include_object,
        compare_type=True,
        compare_server_default=False,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run() -> None:
    url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        from maxloyalty.config import get_settings
        from maxloyalty.kit.embedded import resolve_owner_url

        settings = get_settings()
        url = resolve_owner_url(settings.database_url, settings.data_dir)
    engine = create_async_engine(async_url(url), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _configure(connection)
else:
    asyncio.run(_run())
