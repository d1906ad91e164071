"""A database that cannot take a till's sale answers 503 `database_busy`, never 500: a
server (or role) out of connections, a pool whose connections all stay busy, a server out
of reach. Nothing is written, so the till's retry with the same key posts exactly once."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import CapturingLogger

from maxloyalty.app import create_app
from maxloyalty.config import Settings
from maxloyalty.kit import errors
from maxloyalty.kit.db import APP_ROLE, role_url
from maxloyalty.ledger.models import LedgerOperation
from maxloyalty.runtime import Runtime
from tests.ledger.conftest import Shop
from tests.test_app import assert_problem

SALE = {"type": "SALE", "amount": 100_000, "check_number": "B-1"}
PASSWORD = "refused-anyway"


@pytest.fixture
async def refused_role(owner_engine: AsyncEngine) -> AsyncIterator[str]:
    """A login the server refuses on connect, as a full server refuses everyone. Roles are
    cluster-wide: a name of its own, dropped afterwards."""
    name = f"ml_refused_{uuid.uuid4().hex[:10]}"
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}' CONNECTION LIMIT 0"
                f" IN ROLE {APP_ROLE}"
            )
        )
    yield name
    async with owner_engine.begin() as conn:
        await conn.execute(text(f"DROP ROLE {name}"))


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> CapturingLogger:
    """What the error handlers log (the module's logger replaced: structlog caches it)."""
    logger = CapturingLogger()
    monkeypatch.setattr(errors, "log", logger)
    return logger


@asynccontextmanager
async def served(
    shop: Shop, settings: Settings, **changes: Any
) -> AsyncIterator[tuple[Shop, Runtime]]:
    """The shop's till talking to another API process, started from the test's settings
    with `changes`."""
    runtime = Runtime.start(settings.model_copy(update=changes))
    app = create_app(runtime.settings)
    app.state.runtime = runtime
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield replace(shop, client=c), runtime
    finally:
        await runtime.close()


async def operations(runtime: Runtime, shop: Shop) -> int | None:
    async with runtime.db.transaction(shop.tenant.id) as session:
        return await session.scalar(select(func.count()).select_from(LedgerOperation))


def assert_busy(answer: httpx.Response) -> None:
    assert_problem(answer, 503, "database_busy")
    assert answer.headers["retry-after"] == "1"


async def test_a_refused_connection_is_503_and_the_retry_posts_once(
    make_shop: Any,
    runtime: Runtime,
    settings: Settings,
    owner_url: str,
    refused_role: str,
    logged: CapturingLogger,
) -> None:
    shop: Shop = await make_shop()
    refused_url = role_url(owner_url, refused_role, PASSWORD)
    # The very error a full server gives ("sorry, too many clients already").
    dsn = refused_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with pytest.raises(asyncpg.TooManyConnectionsError) as refusal:
        await asyncpg.connect(dsn)
    assert refusal.value.sqlstate == "53300"

    app_url = refused_url.render_as_string(hide_password=False)
    async with served(shop, settings, app_database_url=app_url) as (refused, _):
        assert_busy(await refused.post(SALE, key="sale-1"))
    assert [(c.method_name, c.args, c.kwargs["sqlstate"]) for c in logged.calls] == [
        ("warning", ("database_unavailable",), "53300")
    ]
    assert await operations(runtime, shop) == 0

    posted = await shop.post(SALE, key="sale-1")
    assert posted.status_code == 201, posted.text
    replayed = await shop.post(SALE, key="sale-1")
    assert replayed.json() == posted.json()
    assert await operations(runtime, shop) == 1
    assert (await shop.balance())["balance"] == posted.json()["accrued"] > 0


async def test_a_pool_that_stays_busy_is_503(
    make_shop: Any, settings: Settings, logged: CapturingLogger
) -> None:
    shop: Shop = await make_shop()
    async with served(shop, settings, db_pool_size=1, db_pool_timeout=0.2) as (busy, process):
        # A pool of 1 and as many in overflow: the test holds both connections.
        async with process.db.engine.connect(), process.db.engine.connect():
            assert_busy(await busy.post(SALE))
        assert (await busy.post(SALE)).status_code == 201  # a connection came free
    assert [(c.method_name, c.args) for c in logged.calls] == [
        ("warning", ("database_pool_timeout",))
    ]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_unreachable_server_is_503(
    make_shop: Any, settings: Settings, logged: CapturingLogger
) -> None:
    shop: Shop = await make_shop()
    nowhere = f"postgresql://maxloyalty_app@127.0.0.1:{_closed_port()}/nowhere"
    async with served(shop, settings, app_database_url=nowhere) as (cut_off, _):
        assert_busy(await cut_off.post(SALE))
    [call] = logged.calls
    assert (call.method_name, call.args) == ("warning", ("database_unreachable",))
    assert "Connect call failed" in call.kwargs["error"]
