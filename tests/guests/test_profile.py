"""A guest signs up by SMS, gets the network's card at once, and keeps their profile."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from maxloyalty.audit.models import ActivityLog
from maxloyalty.runtime import Runtime
from tests.factories import bearer, make_program, make_tenant
from tests.guests.test_sign_in import last_code, register, verify
from tests.test_app import assert_problem


async def test_sign_up_issues_card_and_profile_is_editable(client: Any, runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    await make_program(runtime, tenant)
    await register(client, tenant.id)
    tokens = (await verify(client, tenant.id, last_code(runtime))).json()
    guest = bearer(tokens)

    profile = (await client.get("/api/me/profile", headers=guest)).json()
    assert len(profile["cards"]) == 1
    assert profile["cards"][0]["balance"] == 0
    assert len(profile["cards"][0]["code"]) == 6

    updated = await client.patch(
        "/api/me/profile",
        json={"first_name": "Вера", "birth_date": "1991-07-04", "preferred_channel": "TELEGRAM"},
        headers=guest,
    )
    assert updated.status_code == 200, updated.text
    assert (updated.json()["first_name"], updated.json()["birth_date"]) == ("Вера", "1991-07-04")
    locked = await client.patch("/api/me/profile", json={"birth_date": "1991-07-05"}, headers=guest)
    assert_problem(locked, 409, "birth_date_locked")

    with_child = await client.post(
        "/api/me/children", json={"name": "Миша", "birth_date": "2019-02-01"}, headers=guest
    )
    child_id = with_child.json()["children"][0]["id"]
    assert (await client.delete(f"/api/me/children/{child_id}", headers=guest)).status_code == 204
    assert (await client.get("/api/me/profile", headers=guest)).json()["children"] == []

    consent = await client.post(
        "/api/me/consents", json={"kind": "MARKETING", "granted": False}, headers=guest
    )
    assert consent.status_code == 201
    exported = (await client.get("/api/me/data", headers=guest)).json()
    assert [c["granted"] for c in exported["consents"] if c["kind"] == "MARKETING"] == [True, False]


async def test_the_activity_log_keeps_no_profile_values(client: Any, runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    await make_program(runtime, tenant)
    await register(client, tenant.id)
    guest = bearer((await verify(client, tenant.id, last_code(runtime))).json())
    body = {"first_name": "Вера", "city": "Тверь", "birth_date": "1991-07-04"}
    assert (await client.patch("/api/me/profile", json=body, headers=guest)).status_code == 200
    async with runtime.db.transaction(tenant.id) as session:
        entries = list(
            await session.scalars(
                select(ActivityLog).where(ActivityLog.action == "guest.profile_updated")
            )
        )
    assert [(e.before, e.after) for e in entries] == [
        (None, {"fields": ["birth_date", "city", "first_name"]})
    ]
