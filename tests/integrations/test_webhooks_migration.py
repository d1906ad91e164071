"""Migration 0010 on a database with webhook history: the attempt log moves to
`webhook_logs` with its row-level security and append-only grants, every attempt gets its
delivery, and the old per-attempt jobs still queued become pending deliveries (and back)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import make_url, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from maxloyalty.kit.db import APP_ROLE, async_url
from maxloyalty.kit.migrate import alembic_config
from tests.conftest import _admin

T, W = uuid.uuid4(), uuid.uuid4()
SENT, RETRYING, UNTRIED = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


@pytest.fixture
async def scratch(owner_url: str) -> AsyncIterator[AsyncEngine]:
    url = make_url(owner_url)
    name = f"{url.database}_mig"
    await _admin(owner_url, f'CREATE DATABASE "{name}"')
    scratch_url = url.set(database=name).render_as_string(hide_password=False)
    engine = create_async_engine(async_url(scratch_url), poolclass=pool.NullPool)
    try:
        yield engine
    finally:
        await engine.dispose()
        await _admin(owner_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _alembic(engine: AsyncEngine, step: str, revision: str) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config("")
        config.attributes["connection"] = connection
        getattr(command, step)(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def _rows(conn: AsyncConnection, sql: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in await conn.execute(text(sql))]


async def test_history_survives_the_upgrade_and_the_downgrade(scratch: AsyncEngine) -> None:
    await _alembic(scratch, "upgrade", "0009")
    async with scratch.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tenants (id, name, slug, organization_type, subscription_status,"
                " timezone, features, settings)"
                " VALUES (:t, 'Сеть', 'mig', 'chain', 'ACTIVE', 'UTC', '{}', '{}')"
            ),
            {"t": T},
        )
        await conn.execute(
            text(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, secret, is_active)"
                " VALUES (:w, :t, 'https://example.com/h', '{}', 'x', true)"
            ),
            {"w": W, "t": T},
        )
        for minute, event in enumerate((SENT, RETRYING, UNTRIED)):
            await conn.execute(
                text(
                    "INSERT INTO integration_events (id, tenant_id, event_type, payload, status,"
                    " attempts, created_at) VALUES (:e, :t, 'test.ping', '{}', 'DELIVERED', 1,"
                    " now() - make_interval(mins => 10 - :m))"
                ),
                {"e": event, "t": T, "m": minute},
            )
        for event, attempt, status, succeeded in (
            (SENT, 1, 500, False),
            (SENT, 2, 200, True),
            (RETRYING, 1, 503, False),
        ):
            await conn.execute(
                text(
                    "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id,"
                    " event_type, attempt, status_code, succeeded, created_at)"
                    " VALUES (gen_random_uuid(), :t, :w, :e, 'test.ping', :a, :s, :ok, now())"
                ),
                {"t": T, "w": W, "e": event, "a": attempt, "s": status, "ok": succeeded},
            )
        for event, attempt, delay in ((RETRYING, 2, timedelta(hours=1)), (UNTRIED, 1, timedelta())):
            payload = (
                f'{{"tenant_id": "{T}", "endpoint_id": "{W}", "event_id": "{event}",'
                f' "attempt": {attempt}}}'
            )
            await conn.execute(
                text(
                    "INSERT INTO pgqueuer (priority, entrypoint, payload, execute_after, status)"
                    " VALUES (0, 'webhooks.deliver', convert_to(:p, 'UTF8'),"
                    " now() + :d, 'queued')"
                ),
                {"p": payload, "d": delay},
            )

    await _alembic(scratch, "upgrade", "0010")
    async with scratch.connect() as conn:
        deliveries = await _rows(
            conn,
            "SELECT event_id, status, attempts, next_attempt_at > now() + interval '50 minutes'"
            " FROM webhook_deliveries ORDER BY event_created_at",
        )
        assert deliveries == [
            (SENT, "SENT", 2, None),
            (RETRYING, "PENDING", 1, True),  # due when its old job was
            (UNTRIED, "PENDING", 0, False),
        ]
        assert await _rows(
            conn,
            "SELECT l.attempt, d.event_id FROM webhook_logs l"
            " JOIN webhook_deliveries d ON d.id = l.delivery_id"
            " ORDER BY d.event_created_at, l.attempt",
        ) == [(1, SENT), (2, SENT), (1, RETRYING)]
        assert await _rows(conn, "SELECT entrypoint FROM pgqueuer") == []
        for table, may in (
            ("webhook_logs", {"SELECT", "INSERT"}),
            ("webhook_deliveries", {"SELECT", "INSERT", "UPDATE"}),
        ):
            granted = {
                privilege
                for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE")
                if await conn.scalar(
                    text("SELECT has_table_privilege(:r, :t, :p)"),
                    {"r": APP_ROLE, "t": table, "p": privilege},
                )
            }
            assert granted == may, table
            policies = await _rows(
                conn, f"SELECT policyname FROM pg_policies WHERE tablename = '{table}' ORDER BY 1"
            )
            assert policies == [("platform_read",), ("tenant_isolation",)], table
            assert await conn.scalar(
                text("SELECT relrowsecurity FROM pg_class WHERE relname = :t"), {"t": table}
            )
        names = await _rows(
            conn,
            "SELECT conname FROM pg_constraint"
            " WHERE conrelid = 'webhook_logs'::regclass ORDER BY 1",
        )
        assert names == [
            ("fk_webhook_logs_delivery",),
            ("fk_webhook_logs_endpoint",),
            ("fk_webhook_logs_tenant_id_tenants",),
            ("pk_webhook_logs",),
        ]

    await _alembic(scratch, "downgrade", "0009")
    async with scratch.connect() as conn:
        attempts = await _rows(conn, "SELECT event_id, attempt FROM webhook_deliveries")
        assert sorted(attempts) == sorted([(SENT, 1), (SENT, 2), (RETRYING, 1)])
        jobs = await _rows(
            conn,
            "SELECT convert_from(payload, 'UTF8')::jsonb ->> 'event_id',"
            " (convert_from(payload, 'UTF8')::jsonb ->> 'attempt')::int"
            " FROM pgqueuer WHERE entrypoint = 'webhooks.deliver' ORDER BY 2 DESC",
        )
        assert jobs == [(str(RETRYING), 2), (str(UNTRIED), 1)]
