"""The job queue: transactional enqueue, retries with backoff, several workers."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import text

from maxloyalty.kit import jobs
from maxloyalty.runtime import Runtime
from maxloyalty.worker import run_worker

seen: Counter[str] = Counter()
failures_left: dict[str, int] = {}


@jobs.registry.job("test.record")
async def record_job(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    seen[payload["key"]] += 1


@jobs.registry.job("test.flaky", max_attempts=5, retry_delay=timedelta(milliseconds=50))
async def flaky_job(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
    key = payload["key"]
    if failures_left.get(key, 0) > 0:
        failures_left[key] -= 1
        raise RuntimeError("transient failure")
    seen[key] += 1


async def drain(runtime: Runtime) -> None:
    await asyncio.wait_for(run_worker(runtime, asyncio.Event(), drain=True), timeout=30)


async def test_job_enqueued_in_rolled_back_transaction_never_runs(runtime: Runtime) -> None:
    async with runtime.db.session() as session:
        await jobs.enqueue(session, "test.record", {"key": "rolled-back"})
        await session.rollback()
    async with runtime.db.transaction() as session:
        await jobs.enqueue(session, "test.record", {"key": "committed"})
    await drain(runtime)
    assert seen["rolled-back"] == 0
    assert seen["committed"] == 1


async def test_failed_job_is_retried_until_it_succeeds(runtime: Runtime) -> None:
    failures_left["flaky"] = 2
    async with runtime.db.transaction() as session:
        await jobs.enqueue(session, "test.flaky", {"key": "flaky"})
    for _ in range(40):  # retries are deferred: drain until the backoff has passed
        await drain(runtime)
        if seen["flaky"]:
            break
        await asyncio.sleep(0.05)
    assert seen["flaky"] == 1
    assert failures_left["flaky"] == 0
    async with runtime.db.transaction() as session:
        statuses = (
            await session.execute(
                text(
                    "SELECT status::text, count(*) FROM pgqueuer_log WHERE entrypoint = "
                    "'test.flaky' GROUP BY 1"
                )
            )
        ).all()
    assert dict(statuses).get("successful") == 1


async def test_several_workers_run_each_job_once(runtime: Runtime) -> None:
    keys = [f"multi-{i}" for i in range(60)]
    async with runtime.db.transaction() as session:
        for key in keys:
            await jobs.enqueue(session, "test.record", {"key": key})
    await asyncio.gather(*(drain(runtime) for _ in range(3)))
    assert [seen[k] for k in keys] == [1] * len(keys)


async def test_unknown_job_name_is_refused(runtime: Runtime) -> None:
    async with runtime.db.session() as session:
        with pytest.raises(KeyError, match=r"no\.such\.job"):
            await jobs.enqueue(session, "no.such.job", {})
