"""The pool without a pre-ping: a connection the server has closed is replaced on checkout,
without a round trip for the ones that are fine."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.config import Settings
from maxloyalty.kit.db import APP_ROLE, Database, role_url


async def test_connections_the_server_closed_are_replaced_on_checkout(
    settings: Settings, migrated: str, owner_engine: AsyncEngine
) -> None:
    url = role_url(migrated, APP_ROLE, settings.secret("app_db_password"))
    db = Database(url, url, pool_size=2)
    try:

        async def backend() -> int:
            async with db.transaction() as session:
                pid = await session.scalar(text("SELECT pg_backend_pid()"))
            assert isinstance(pid, int)
            return pid

        first = await backend()
        assert await backend() == first  # pooled: the same connection again
        async with owner_engine.begin() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        await asyncio.sleep(0.2)  # the closed socket reaches the client's event loop
        second = await backend()  # no error: the dead one was discarded at checkout
        assert second != first
    finally:
        await db.dispose()
