"""The activity log's job: its monthly partitions, made ahead of time."""

from __future__ import annotations

from maxloyalty.audit import service
from maxloyalty.kit import jobs

PARTITION_JOB = "audit.ensure_partitions"


@jobs.registry.periodic(PARTITION_JOB, "17 3 * * *")
async def ensure_partitions(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    async with ctx.db.transaction() as session:
        await service.ensure_partitions(session)
