"""The guests' job handlers: each calls the service that does the work."""

from __future__ import annotations

from maxloyalty.guests.service.rotating import prune
from maxloyalty.kit import jobs
from maxloyalty.kit.clock import utcnow

PRUNE_ROTATING_CODES_JOB = "guests.prune_rotating_codes"


@jobs.registry.periodic(PRUNE_ROTATING_CODES_JOB, "*/10 * * * *")
async def prune_rotating_codes(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    """A code is dead once its minute ends; this only keeps the table small."""
    await prune(ctx.db, utcnow())
