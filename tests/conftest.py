"""Test fixtures: a fresh PostgreSQL database per run (the machine's, or an embedded one),
migrated once; every test starts from empty tables."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url, pool, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from maxloyalty.app import create_app
from maxloyalty.config import Settings
from maxloyalty.identity.models import User, UserRole, UserSession
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.tokens import TokenKeys, issue_access_token
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import async_url
from maxloyalty.kit.embedded import start_embedded_postgres
from maxloyalty.kit.migrate import migrate
from maxloyalty.models import metadata
from maxloyalty.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-" + "x" * 32
TELEGRAM_BOT_TOKEN = "42:TEST"


async def _admin(server_url: str, statement: str) -> None:
    engine = create_async_engine(
        async_url(server_url), poolclass=pool.NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def owner_url() -> AsyncIterator[str]:
    """A fresh database beside the one in DATABASE_URL (or in an embedded server)."""
    server_url = os.environ.get("DATABASE_URL") or start_embedded_postgres(
        ROOT / ".data" / "test", database="postgres"
    )
    name = f"ml_test_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def settings(owner_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=owner_url,
        redis_url=os.environ.get("REDIS_URL"),
        # Its own Redis keys: resetting the limits between tests touches nothing else.
        redis_key_prefix=f"mltest-{uuid.uuid4().hex[:8]}",
        data_dir=tmp_path_factory.mktemp("data"),
        secret_key=TEST_SECRET,
        log_format="console",
        log_level="WARNING",
        run_worker_in_process=False,
        telegram_bot_token=TELEGRAM_BOT_TOKEN,
        # Receivers in tests listen on 127.0.0.1; retries come after a second, not minutes.
        webhooks_allow_private=True,
        webhook_retry_schedule=[1, 1, 1],
    ).with_generated_secrets()


@pytest.fixture(scope="session")
async def migrated(owner_url: str, settings: Settings) -> str:
    await migrate(owner_url, settings)
    # Tests travel in time (expiry, birthdays): partitions for a year either way.
    await _admin(owner_url, "SELECT maxloyalty_ensure_partitions(14, 14)")
    return owner_url


@pytest.fixture(scope="session")
async def owner_engine(migrated: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(async_url(migrated), poolclass=pool.NullPool)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def _runtime(settings: Settings, migrated: str) -> AsyncIterator[Runtime]:
    rt = Runtime.start(settings)
    yield rt
    await rt.close()


# Children before parents. DELETE, not TRUNCATE: a test leaves a few rows in a few tables,
# and truncating every table and monthly partition cost over a second a test.
_CLEANUP = "; ".join(
    f"DELETE FROM {name}"
    for name in [
        "pgqueuer",
        "pgqueuer_log",
        "pgqueuer_schedules",
        "pgqueuer_statistics",
        *(t.name for t in reversed(metadata.sorted_tables)),
    ]
)


@pytest.fixture
async def runtime(_runtime: Runtime, owner_engine: AsyncEngine) -> AsyncIterator[Runtime]:
    """The process runtime; every table is emptied after the test."""
    yield _runtime
    async with owner_engine.begin() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute(_CLEANUP)
    await _runtime.limiter.reset()


@pytest.fixture
async def client(runtime: Runtime, owner_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime.settings)
    app.state.runtime = runtime  # the lifespan is not run by the in-process transport
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


TokenFactory = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
def auth(runtime: Runtime) -> TokenFactory:
    """`await auth(role, tenant_id, restaurant_ids=...)` → an Authorization header: a real
    person with that role, signed in (a session row), as login would leave them."""

    async def make(
        role: Role,
        tenant_id: uuid.UUID | None = None,
        restaurant_ids: tuple[uuid.UUID, ...] = (),
        ttl: timedelta = timedelta(minutes=5),
        subject: uuid.UUID | None = None,
    ) -> dict[str, str]:
        principal = Principal(
            subject=subject or uuid.uuid4(),
            role=role,
            tenant_id=tenant_id,
            restaurant_ids=frozenset(restaurant_ids),
        )
        session_id = uuid.uuid4()
        async with runtime.db.transaction(tenant_id, principal.subject) as session:
            if await session.get(User, principal.subject) is None:
                session.add(
                    User(id=principal.subject, role=Role.OWNER if role is Role.OWNER else role)
                )
                await session.flush()
            if tenant_id is not None:
                await session.execute(
                    pg_insert(UserRole)
                    .values(
                        tenant_id=tenant_id,
                        user_id=principal.subject,
                        role=role,
                        restaurant_ids=sorted(restaurant_ids),
                    )
                    .on_conflict_do_update(
                        index_elements=["tenant_id", "user_id", "role"],
                        # A blocked or erased member stays so: their token is refused.
                        set_={"restaurant_ids": sorted(restaurant_ids)},
                    )
                )
            session.add(
                UserSession(
                    id=session_id,
                    user_id=principal.subject,
                    tenant_id=tenant_id,
                    role=role,
                    family_id=uuid.uuid4(),
                    refresh_token_hash=uuid.uuid4().hex,
                    expires_at=utcnow() + timedelta(days=1),
                )
            )
        token = issue_access_token(TokenKeys(TEST_SECRET), principal, ttl, session_id)
        return {"Authorization": f"Bearer {token}"}

    return make
