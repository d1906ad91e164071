"""Liveness, readiness and metrics endpoints for the orchestrator and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from maxloyalty.kit.errors import problem_response, problem_responses
from maxloyalty.kit.migrate import current_revision, head_revision
from maxloyalty.runtime import runtime_of

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (it does not touch the database)."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(503))
async def readyz(request: Request) -> Response:
    """The database answers and carries the migrations this code expects."""
    try:
        async with runtime_of(request).db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            revision = await current_revision(conn)
    except Exception as exc:
        return problem_response(request, 503, "database_unavailable", type(exc).__name__)
    expected = head_revision()
    if revision != expected:
        return problem_response(
            request,
            503,
            "migrations_pending",
            f"Database is at revision {revision}, the code expects {expected}.",
        )
    return JSONResponse({"status": "ready", "revision": revision})


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
