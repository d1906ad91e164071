"""The webhooks' job handlers: the outbox's fan-out, a queue's drain, the sweep."""

from __future__ import annotations

import uuid

from maxloyalty.integrations.webhooks import delivery
from maxloyalty.kit import events, jobs

events.subscribe_all(delivery.fan_out)


@jobs.registry.job(delivery.DRAIN_JOB)
async def drain_job(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    await delivery.drain(ctx, uuid.UUID(payload["tenant_id"]), uuid.UUID(payload["endpoint_id"]))


@jobs.registry.periodic(delivery.SWEEP_JOB, "* * * * *")
async def sweep(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    await delivery.wake_stalled(ctx)
