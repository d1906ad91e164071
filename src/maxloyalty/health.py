"""Liveness, readiness and metrics endpoints for the orchestrator and Prometheus."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from maxloyalty.kit.errors import (
    DatabaseUnavailable,
    InternalError,
    MigrationsPending,
    problem_responses,
)
from maxloyalty.kit.migrate import current_revision, head_revision
from maxloyalty.runtime import runtime_of

router = APIRouter(tags=["health"])


class Alive(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    revision: str | None


@router.get("/healthz", responses=problem_responses(InternalError))
async def healthz() -> Alive:
    """The process is up (it does not touch the database)."""
    return Alive()


@router.get("/readyz", responses=problem_responses(DatabaseUnavailable, MigrationsPending))
async def readyz(request: Request) -> Ready:
    """The database answers and carries the migrations this code expects."""
    try:
        async with runtime_of(request).db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            revision = await current_revision(conn)
    except Exception as exc:
        raise DatabaseUnavailable(type(exc).__name__) from exc
    expected = head_revision()
    if revision != expected:
        raise MigrationsPending(f"Database is at revision {revision}, the code expects {expected}.")
    return Ready(revision=revision)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
