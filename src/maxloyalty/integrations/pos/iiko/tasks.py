"""The iiko integration's job handlers: iikoTransport events, and retries of the webhook
registration with iikoCloud."""

from __future__ import annotations

import uuid

from maxloyalty.integrations.pos.iiko import sync, webhook
from maxloyalty.kit import jobs


@jobs.registry.job(sync.REGISTER_JOB)
async def retry_register(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    await sync.retry_register(
        ctx.db,
        ctx.settings,
        ctx.cache,
        uuid.UUID(str(payload["tenant_id"])),
        uuid.UUID(str(payload["integration_id"])),
        int(str(payload["attempt"])),
    )


@jobs.registry.job(webhook.PROCESS_JOB)
async def process_events(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    tenant_id = uuid.UUID(str(payload["tenant_id"]))
    await webhook.handle_all(ctx.db, tenant_id, [uuid.UUID(str(e)) for e in payload["event_ids"]])
