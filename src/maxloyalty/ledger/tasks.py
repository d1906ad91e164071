"""The ledger's job handlers: each calls the service that does the work."""

from __future__ import annotations

import uuid

from maxloyalty.kit import jobs
from maxloyalty.kit.clock import utcnow
from maxloyalty.ledger.service.daily import run_daily
from maxloyalty.ledger.service.holds import expire_due
from maxloyalty.ledger.service.levels import reevaluate_program
from maxloyalty.loyalty.models import TierChangeReason
from maxloyalty.loyalty.service import REEVALUATE_JOB

DAILY_JOB = "ledger.daily"
EXPIRE_HOLDS_JOB = "ledger.expire_holds"


@jobs.registry.periodic(DAILY_JOB, "7 * * * *")
async def daily(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    """Hourly, so each tenant's local midnight is handled within the hour."""
    await run_daily(ctx.db)


@jobs.registry.periodic(EXPIRE_HOLDS_JOB, "* * * * *")
async def expire_holds(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    await expire_due(ctx.db, utcnow())


@jobs.registry.job(REEVALUATE_JOB)
async def reevaluate_levels(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    tenant_id, program_id = uuid.UUID(payload["tenant_id"]), uuid.UUID(payload["program_id"])
    await reevaluate_program(ctx.db, tenant_id, program_id, TierChangeReason.LEVELS_EDITED)
