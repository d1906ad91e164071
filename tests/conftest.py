"""Test fixtures: a fresh PostgreSQL database per run (the machine's, or an embedded one),
migrated once; every test starts from empty tables."""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, pool, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from maxloyalty.app import create_app
from maxloyalty.config import Settings
from maxloyalty.identity.models import User, UserRole, UserSession
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.service.tokens import issue_access_token
from maxloyalty.kit import timestamps
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import async_url
from maxloyalty.kit.embedded import start_embedded_postgres
from maxloyalty.kit.migrate import MIGRATIONS, migrate
from maxloyalty.kit.signing import TokenKeys
from maxloyalty.models import metadata
from maxloyalty.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-" + "x" * 32
TELEGRAM_BOT_TOKEN = "42:TEST"
_DB_PASSWORDS = {"app_db_password": "test-app-role", "platform_db_password": "test-platform-role"}


async def _admin(server_url: str, statement: str) -> None:
    engine = create_async_engine(
        async_url(server_url), poolclass=pool.NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _template_name() -> str:
    """Named by the migrations' contents and the month (partitions are made around today):
    a template built by an earlier run is reused until either changes."""
    digest = hashlib.sha256(utcnow().strftime("%Y-%m").encode())
    for path in sorted(MIGRATIONS.rglob("*.py")):
        digest.update(path.relative_to(MIGRATIONS).as_posix().encode() + path.read_bytes())
    return f"ml_template_{digest.hexdigest()[:16]}"


async def _ensure_template(server_url: str, settings: Settings) -> str:
    """A migrated database to clone, built once for every xdist worker and later run.

    Built under another name and renamed when done, so a half-built one is never cloned;
    the advisory lock makes the other workers wait for the one building it."""
    name = _template_name()
    engine = create_async_engine(
        async_url(server_url), poolclass=pool.NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(hashtext('ml_test_template'))"))
            found = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if not found:
                building = f"{name}_building"
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)'))
                await conn.execute(text(f'CREATE DATABASE "{building}"'))
                url = make_url(server_url).set(database=building)
                await migrate(url.render_as_string(hide_password=False), settings)
                # Tests travel in time (expiry, birthdays): partitions for a year either way.
                await _admin(
                    url.render_as_string(hide_password=False),
                    "SELECT maxloyalty_ensure_partitions(14, 14)",
                )
                await conn.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{name}"'))
            await conn.execute(text("SELECT pg_advisory_unlock(hashtext('ml_test_template'))"))
    finally:
        await engine.dispose()
    return name


@pytest.fixture(scope="session")
def server_url() -> str:
    return os.environ.get("DATABASE_URL") or start_embedded_postgres(
        ROOT / ".data" / "test", database="postgres"
    )


@pytest.fixture(scope="session")
def settings(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("data")
    # The runtime roles are the cluster's, shared by every worker's database: one password
    # for all of them, or a worker setting its own would lock the others out.
    (data_dir / "secrets.json").write_text(json.dumps(_DB_PASSWORDS))
    database = f"ml_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
    return Settings(
        database_url=make_url(server_url)
        .set(database=database)
        .render_as_string(hide_password=False),
        redis_url=os.environ.get("REDIS_URL"),
        # Its own Redis keys: resetting the limits between tests touches nothing else.
        redis_key_prefix=f"mltest-{uuid.uuid4().hex[:8]}",
        data_dir=data_dir,
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
async def owner_url(server_url: str, settings: Settings) -> AsyncIterator[str]:
    """This worker's own database, cloned from the migrated template."""
    template = await _ensure_template(server_url, settings)
    url = settings.database_url
    name = make_url(url).database
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield url
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated(owner_url: str) -> str:
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


@pytest.fixture(scope="session")
def app(_runtime: Runtime) -> FastAPI:
    """One application for the run: FastAPI prepares each route on its first request, and
    preparing them again for every test cost a quarter of the suite's time."""
    app = create_app(_runtime.settings)
    app.state.runtime = _runtime  # the lifespan is not run by the in-process transport
    return app


@pytest.fixture
async def client(runtime: Runtime, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """In-process client; every JSON answer it receives must keep the one time format."""
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [check_time_format]},
    ) as c:
        yield c


_LOOKS_LIKE_A_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def moments_out_of_format(value: object, where: str = "$") -> list[str]:
    """Every string in a JSON value that reads as a moment but is not RFC 3339 UTC `Z`
    with milliseconds, with its JSON path. A till's `payload` is shown as the till sent it."""
    if isinstance(value, dict):
        return [
            b
            for k, v in value.items()
            if k != "payload"
            for b in moments_out_of_format(v, f"{where}.{k}")
        ]
    if isinstance(value, list):
        return [b for i, v in enumerate(value) for b in moments_out_of_format(v, f"{where}[{i}]")]
    if (
        isinstance(value, str)
        and _LOOKS_LIKE_A_MOMENT.match(value)
        and not re.fullmatch(timestamps.PATTERN, value)
    ):
        return [f"{where} = {value!r}"]
    return []


async def check_time_format(response: httpx.Response) -> None:
    if not response.headers.get("content-type", "").endswith("json"):
        return
    await response.aread()
    wrong = moments_out_of_format(response.json())
    assert not wrong, f"{response.request.method} {response.request.url.path}: {wrong}"


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
