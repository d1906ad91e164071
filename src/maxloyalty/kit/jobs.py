"""Background jobs on PgQueuer (PostgreSQL-backed).

A job is enqueued on the connection of the caller's open transaction, so it exists exactly
when the change that caused it commits. Handlers are retried with exponential backoff;
periodic jobs are cron schedules that enqueue an ordinary job, so they get the same retries
and run once at a time however many workers there are.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from pgqueuer import PgQueuer, Queries
from pgqueuer.db import AsyncpgDriver
from pgqueuer.executors import DatabaseRetryEntrypointExecutor, EntrypointExecutorParameters
from pgqueuer.models import Job, Schedule
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.config import Settings
from maxloyalty.kit import metrics
from maxloyalty.kit.cache import Cache
from maxloyalty.kit.db import Database

log = structlog.get_logger(__name__)

Payload = dict[str, Any]


@dataclass(frozen=True)
class JobContext:
    db: Database
    settings: Settings
    cache: Cache  # the process's: Redis when configured, else its memory


Handler = Callable[[JobContext, Payload], Awaitable[None]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    handler: Handler
    max_attempts: int
    concurrency_limit: int
    retry_delay: timedelta


@dataclass
class JobRegistry:
    jobs: dict[str, JobSpec] = field(default_factory=dict)
    schedules: dict[str, str] = field(default_factory=dict)

    def job(
        self,
        name: str,
        *,
        max_attempts: int = 8,
        concurrency_limit: int = 0,
        retry_delay: timedelta = timedelta(seconds=2),
    ) -> Callable[[Handler], Handler]:
        """Register a handler; a failed run is retried after `retry_delay` × 2^attempts."""

        def register(handler: Handler) -> Handler:
            if name in self.jobs:
                raise RuntimeError(f"job {name} registered twice")
            self.jobs[name] = JobSpec(name, handler, max_attempts, concurrency_limit, retry_delay)
            return handler

        return register

    def periodic(self, name: str, cron: str) -> Callable[[Handler], Handler]:
        """A job that also runs on a cron schedule (UTC), one run at a time."""

        def register(handler: Handler) -> Handler:
            self.job(name, concurrency_limit=1)(handler)
            self.schedules[name] = cron
            return handler

        return register


registry = JobRegistry()


def _encode(payload: Payload) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


async def _queries(session: AsyncSession) -> Queries:
    """Queries on the asyncpg connection of `session`'s transaction.

    SQLAlchemy's asyncpg adapter sends BEGIN lazily, with its first statement; a job
    written before that would commit on its own, so make sure the transaction is open.
    """
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        await connection.execute(text("SELECT 1"))
    if not driver.is_in_transaction():
        raise RuntimeError("jobs must be enqueued inside a transaction")
    return Queries(AsyncpgDriver(driver))


async def enqueue(
    session: AsyncSession,
    name: str,
    payload: Payload,
    *,
    delay: timedelta | None = None,
    dedupe_key: str | None = None,
) -> None:
    """Enqueue inside `session`'s transaction: rolled back with it, visible when it commits."""
    if name not in registry.jobs:
        raise KeyError(f"unknown job {name}")
    queries = await _queries(session)
    await queries.enqueue(
        name, _encode(payload), execute_after=delay, dedupe_key=dedupe_key, on_conflict="skip"
    )


def _runner(spec: JobSpec, ctx: JobContext) -> Callable[[Job], Awaitable[None]]:
    async def run(job: Job) -> None:
        payload: Payload = json.loads(job.payload) if job.payload else {}
        try:
            await spec.handler(ctx, payload)
        except Exception:
            metrics.jobs_processed.labels(spec.name, "error").inc()
            log.warning("job_failed", job=spec.name, job_id=job.id, attempts=job.attempts)
            raise
        metrics.jobs_processed.labels(spec.name, "ok").inc()

    return run


def _retrying(spec: JobSpec) -> Callable[[EntrypointExecutorParameters], Any]:
    def factory(params: EntrypointExecutorParameters) -> DatabaseRetryEntrypointExecutor:
        return DatabaseRetryEntrypointExecutor(
            params,
            max_attempts=spec.max_attempts,
            initial_delay=spec.retry_delay,
            max_delay=timedelta(minutes=10),
        )

    return factory


def _scheduler(name: str, queries: Queries) -> Callable[[Schedule], Awaitable[None]]:
    async def tick(schedule: Schedule) -> None:
        # The dedupe key keeps a slow run from being queued a second time.
        await queries.enqueue(name, _encode({}), dedupe_key=f"cron:{name}", on_conflict="skip")

    return tick


def build_worker(connection: asyncpg.Connection, ctx: JobContext) -> PgQueuer:
    """A PgQueuer bound to every registered job and schedule."""
    pgq = PgQueuer.from_asyncpg_connection(connection)
    queries = pgq.queries
    assert isinstance(queries, Queries)
    for spec in registry.jobs.values():
        pgq.entrypoint(
            spec.name,
            concurrency_limit=spec.concurrency_limit,
            on_failure="hold",
            executor_factory=_retrying(spec),
        )(_runner(spec, ctx))
    for name, cron in registry.schedules.items():
        pgq.schedule(name, cron)(_scheduler(name, queries))
    return pgq
