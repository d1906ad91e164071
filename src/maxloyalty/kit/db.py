"""Engines and sessions, with the tenant of every transaction handed to PostgreSQL.

Three database roles take part:
- the *owner* (from `DATABASE_URL`) runs migrations and owns every table;
- `maxloyalty_app` serves requests and jobs: row-level security limits it to the tenant
  set with `set_config('app.tenant_id', ..., true)` at the start of each transaction;
- `maxloyalty_platform` reads across tenants for the platform owner: a separate login with
  its own pool, so no request path can drift into it by accident.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, Dialect, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.selectable import Select

from maxloyalty.config import Settings
from maxloyalty.kit.errors import DatabaseUnreachable, Rejection
from maxloyalty.kit.live import BROKER_KEY, Broker

APP_ROLE = "maxloyalty_app"
PLATFORM_ROLE = "maxloyalty_platform"

TENANT_KEY = "tenant_id"
USER_KEY = "user_id"
_SET_CONTEXT = text(
    "SELECT set_config('app.tenant_id', :tenant, true), set_config('app.user_id', :user, true)"
)


def async_url(url: str) -> URL:
    """Any PostgreSQL URL as an asyncpg one for SQLAlchemy."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg")


def role_url(owner_url: str, role: str, password: str) -> URL:
    """The owner's URL with another role's credentials: same server, same database."""
    return async_url(owner_url).set(username=role, password=password)


def runtime_urls(settings: Settings, owner_url: str) -> tuple[URL, URL]:
    app = (
        async_url(settings.app_database_url)
        if settings.app_database_url
        else role_url(owner_url, APP_ROLE, settings.secret("app_db_password"))
    )
    platform = (
        async_url(settings.platform_database_url)
        if settings.platform_database_url
        else role_url(owner_url, PLATFORM_ROLE, settings.secret("platform_db_password"))
    )
    return app, platform


class ContextConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that sends a transaction's tenant and user with its BEGIN, in
    one simple query: the context costs no round trip of its own (`_apply_context`). Until
    a BEGIN comes it waits; a transaction that never began sees no tenant (fails closed)."""

    _ml_context: str | None = None

    async def execute(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109 - asyncpg's own signature
    ) -> str:
        if self._ml_context is not None and not args and query.startswith("BEGIN"):
            query, self._ml_context = f"{query} {self._ml_context}", None
        status: str = await super().execute(query, *args, timeout=timeout)
        return status


def _context_sql(tenant_id: object, user_id: object) -> str:
    # Literals, not parameters (a simple query takes none): UUIDs, checked as such.
    tenant = str(UUID(str(tenant_id))) if tenant_id else ""
    user = str(UUID(str(user_id))) if user_id else ""
    return (
        f"SELECT set_config('app.tenant_id', '{tenant}', true),"
        f" set_config('app.user_id', '{user}', true);"
    )


@event.listens_for(Session, "after_begin")
def _apply_context(session: Session, _tx: SessionTransaction, connection: Connection) -> None:
    """Enter the session's tenant and user into the transaction that begins: with its BEGIN
    where the connection can (the asyncpg driver starts a transaction lazily, at the first
    statement), else as a statement of its own."""
    tenant_id, user_id = session.info.get(TENANT_KEY), session.info.get(USER_KEY)
    if tenant_id is None and user_id is None:
        return
    driver = getattr(connection.connection, "driver_connection", None)
    if isinstance(driver, ContextConnection) and not driver.is_in_transaction():
        driver._ml_context = _context_sql(tenant_id, user_id)
        return
    connection.execute(
        _SET_CONTEXT,
        {"tenant": str(tenant_id or ""), "user": str(user_id or "")},
    )


def _connect(
    dialect: Dialect, _record: ConnectionPoolEntry, cargs: list[Any], cparams: dict[str, Any]
) -> DBAPIConnection:
    """Connect as SQLAlchemy would; a server out of reach becomes `DatabaseUnreachable`
    (asyncpg raises it as a bare OSError, which SQLAlchemy does not wrap)."""
    try:
        return dialect.connect(*cargs, **cparams)
    except OSError as exc:
        raise DatabaseUnreachable(str(exc)) from exc


_RECYCLE_SECONDS = 1800


def _forget_context(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """A context never sent (no statement ran) must not reach the next user."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if isinstance(driver, ContextConnection):
        driver._ml_context = None


def _discard_closed(
    dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry, _proxy: object
) -> None:
    """A pooled connection whose socket the server closed (a restart, an idle timeout, a
    terminated backend) is known closed without asking the server: the pool replaces it.
    This is what a pre-ping bought, minus its round trips on every checkout."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this connection")


def _engine(url: URL, *, pool_size: int, pool_timeout: float) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        # Connections older than this are replaced on checkout (load balancers and
        # PgBouncer-like proxies drop idle ones silently).
        pool_recycle=_RECYCLE_SECONDS,
        connect_args={"connection_class": ContextConnection},
    )
    event.listen(engine.sync_engine, "do_connect", _connect)
    event.listen(engine.sync_engine.pool, "checkout", _discard_closed)
    event.listen(engine.sync_engine.pool, "checkin", _forget_context)
    return engine


_PLATFORM_POOL_SIZE = 2


def connections_per_process(pool_size: int, *, worker: bool) -> int:
    """The most connections one process holds: the app pool (`pool_size`, as many again
    in overflow), the platform pool likewise, and with an in-process job worker the one
    connection PgQueuer listens and dequeues on (its jobs take the app pool's)."""
    return 2 * pool_size + 2 * _PLATFORM_POOL_SIZE + (1 if worker else 0)


_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


def for_update(statement: _Query) -> _Query:
    """Lock the selected rows and refresh objects the session already holds with the locked
    values: an object may sit in the session from an earlier unlocked read, and the locked
    row must win, or a concurrent change would be lost."""
    return statement.with_for_update().execution_options(populate_existing=True)


class Database:
    """The app's and the platform's pools, and sessions bound to a tenant; with `live`,
    every session carries the broker that changes it commits are published to."""

    def __init__(
        self,
        app_url: URL,
        platform_url: URL,
        *,
        pool_size: int = 10,
        pool_timeout: float = 10,
        live: Broker | None = None,
    ) -> None:
        self.engine = _engine(app_url, pool_size=pool_size, pool_timeout=pool_timeout)
        self.platform_engine = _engine(
            platform_url, pool_size=_PLATFORM_POOL_SIZE, pool_timeout=pool_timeout
        )
        info = {BROKER_KEY: live} if live is not None else {}
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, info=info)
        self._platform_sessions = async_sessionmaker(
            self.platform_engine, expire_on_commit=False, info=info
        )

    def session(self, tenant_id: UUID | None = None, user_id: UUID | None = None) -> AsyncSession:
        """A session whose every transaction sees only `tenant_id`'s rows (none if unset);
        `user_id` additionally opens that user's own identity rows (roles, sessions)."""
        session = self._sessions()
        if tenant_id is not None:
            session.info[TENANT_KEY] = tenant_id
        if user_id is not None:
            session.info[USER_KEY] = user_id
        return session

    def platform_session(self) -> AsyncSession:
        """Cross-tenant reads for the platform owner; callers audit why they use it."""
        return self._platform_sessions()

    @asynccontextmanager
    async def transaction(
        self, tenant_id: UUID | None = None, user_id: UUID | None = None
    ) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on any error."""
        async with self.session(tenant_id, user_id) as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.platform_engine.dispose()


@asynccontextmanager
async def unit_of_work(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """The one commit point of a request: commit when it succeeds; when it ends in a
    `Rejection`, commit what was written before it (the refusal's audit entry, attempt
    counter, revoked sessions) and let the refusal propagate; roll back on anything else."""
    try:
        yield session
    except Rejection:
        await session.commit()
        raise
    except BaseException:
        await session.rollback()
        raise
    await session.commit()


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the unique/foreign-key/check constraint behind an IntegrityError."""
    cause = getattr(exc.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None)
    return str(name) if name else None


async def bind(
    session: AsyncSession, *, tenant_id: UUID | None = None, user_id: UUID | None = None
) -> None:
    """Enter a tenant and/or user learnt mid-request (login, refresh) into `session`, for the
    rest of its current transaction and every later one."""
    if tenant_id is not None:
        session.info[TENANT_KEY] = tenant_id
    if user_id is not None:
        session.info[USER_KEY] = user_id
    if not session.in_transaction():
        return  # the next transaction takes it from session.info as it begins
    await session.execute(
        _SET_CONTEXT,
        {
            "tenant": str(session.info.get(TENANT_KEY) or ""),
            "user": str(session.info.get(USER_KEY) or ""),
        },
    )
