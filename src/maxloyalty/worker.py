"""The job worker: PgQueuer over its own connection, as the app role."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import asyncpg
import structlog
from pgqueuer.types import QueueExecutionMode

# Importing the modules that register jobs: the registry must be complete before building.
from maxloyalty.audit import tasks as _audit_jobs  # noqa: F401
from maxloyalty.guests import tasks as _guest_jobs  # noqa: F401
from maxloyalty.integrations.pos.iiko import tasks as _iiko_jobs  # noqa: F401
from maxloyalty.integrations.webhooks import tasks as _webhook_jobs  # noqa: F401
from maxloyalty.kit import events as _event_jobs  # noqa: F401
from maxloyalty.kit.jobs import build_worker
from maxloyalty.ledger import tasks as _ledger_jobs  # noqa: F401
from maxloyalty.runtime import Runtime

log = structlog.get_logger(__name__)


def _dsn(runtime: Runtime) -> str:
    url = runtime.db.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def run_worker(
    runtime: Runtime, stop: asyncio.Event, *, drain: bool = False, batch_size: int = 10
) -> None:
    """Process jobs until `stop` is set (or, with `drain`, until the queue is empty)."""
    connection = await asyncpg.connect(_dsn(runtime))
    try:
        pgq = build_worker(connection, runtime.job_context())
        mode = QueueExecutionMode.drain if drain else QueueExecutionMode.continuous
        runner = asyncio.create_task(
            pgq.run(mode=mode, batch_size=batch_size, dequeue_timeout=timedelta(seconds=5))
        )
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner not in done:
            pgq.shutdown.set()
            await runner
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
        runner.result()
    finally:
        await connection.close()
