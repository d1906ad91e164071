"""Managing endpoints: what they subscribe to (known event types only), changing them,
resuming a disabled one, rotating the secret; admin-only and audited."""

from __future__ import annotations

import ast
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from maxloyalty.audit.models import ActivityLog
from maxloyalty.identity.principal import Role
from maxloyalty.integrations.webhooks.event_types import EVENT_TYPES
from maxloyalty.runtime import Runtime
from tests.conftest import ROOT, TokenFactory
from tests.factories import make_tenant
from tests.integrations.fake_http import Answer, FakeServer
from tests.integrations.webhooks.test_delivery import drain, ping, received, register
from tests.test_app import assert_problem


def _literals(node: ast.expr, where: str) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body, where) + _literals(node.orelse, where)
    raise AssertionError(f"{where}: publish() with an event type that is not a literal")


def _published_event_types() -> set[str]:
    """The event type of every outbox `publish(...)` call in the source."""
    found: set[str] = set()
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            # The outbox's `publish`, imported by name; a live broker's `.publish` is not.
            if getattr(node.func, "id", None) != "publish":
                continue
            where = f"{path}:{node.lineno}"
            given = [k.value for k in node.keywords if k.arg == "event_type"] + node.args[2:3]
            assert given, f"{where}: publish() without an event type"
            found.update(_literals(given[0], where))
    return found


def test_the_event_type_list_is_what_the_code_publishes() -> None:
    assert _published_event_types() == EVENT_TYPES.keys()


async def _audit(runtime: Runtime, tenant_id: uuid.UUID, action: str) -> list[ActivityLog]:
    async with runtime.db.transaction(tenant_id) as session:
        query = select(ActivityLog).where(ActivityLog.action == action)
        return list(await session.scalars(query.order_by(ActivityLog.created_at, ActivityLog.id)))


async def test_event_types_are_known_ones(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    listed = await client.get("/api/webhooks/event-types", headers=admin)
    assert listed.json()["next_cursor"] is None  # the whole catalogue in one page
    assert {t["type"] for t in listed.json()["items"]} >= {
        "transaction.created",
        "transaction.reversed",
    }

    typo = {"url": "http://127.0.0.1:9/hook", "event_types": ["transaction.reversed", "tx.made"]}
    answer = await client.post("/api/webhooks/endpoints", json=typo, headers=admin)
    assert "tx.made" in str(assert_problem(answer, 422, "unknown_event_type")["detail"])
    assert (await client.get("/api/webhooks/endpoints", headers=admin)).json()["items"] == []

    hook = await register(client, admin, "http://127.0.0.1:9/hook", ["transaction.reversed"])
    patched = await client.patch(
        f"/api/webhooks/endpoints/{hook['id']}",
        json={"event_types": ["guest.created", "nope"]},
        headers=admin,
    )
    assert_problem(patched, 422, "unknown_event_type")
    listed = await client.get("/api/webhooks/endpoints", headers=admin)
    assert listed.json()["items"][0]["event_types"] == [
        "transaction.reversed"
    ]  # nothing half-applied


async def test_patch_changes_what_was_given_and_is_audited(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    async with FakeServer() as old, FakeServer() as new:
        old_url, new_url = old.url, new.url + "/v2"
        hook = await register(client, admin, old_url)
        path = f"/api/webhooks/endpoints/{hook['id']}"
        changed = await client.patch(
            path,
            json={
                "url": new.url + "/v2",
                "event_types": ["restaurant.created"],
                "description": "x",
            },
            headers=admin,
        )
        assert changed.status_code == 200, changed.text
        body = changed.json()
        assert (body["url"], body["event_types"], body["description"]) == (
            new.url + "/v2",
            ["restaurant.created"],
            "x",
        )
        cleared = await client.patch(path, json={"description": None}, headers=admin)
        assert cleared.json()["description"] is None
        assert cleared.json()["url"] == new.url + "/v2"  # untouched when not given
        await client.post(
            "/api/restaurants", json={"name": "Новый", "timezone": "UTC"}, headers=admin
        )
        await ping(runtime, tenant.id, 1)  # no longer subscribed
        await drain(runtime)
    assert old.requests == []
    assert [p["type"] for p in received(new, hook["secret"])] == ["restaurant.created"]
    assert new.requests[0].path == "/v2"

    (entry, _) = await _audit(runtime, tenant.id, "webhook.endpoint_updated")
    assert entry.entity_id == hook["id"]
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["url"], entry.after["url"]) == (old_url, new_url)
    everything = json.dumps(
        [(a.before, a.after) for a in await _audit(runtime, tenant.id, "webhook.endpoint_updated")]
    )
    assert "whsec_" not in everything

    for bad, code in (
        ({"url": None}, "validation_error"),
        ({"is_active": None}, "validation_error"),
        ({"secret": "whsec_mine"}, "validation_error"),
        ({"url": "https://[::1/x"}, "webhook_url_refused"),
    ):
        assert_problem(await client.patch(path, json=bad, headers=admin), 422, code)
    missing = await client.patch(f"/api/webhooks/endpoints/{uuid.uuid4()}", json={}, headers=admin)
    assert_problem(missing, 404, "webhook_endpoint_not_found")


async def test_only_admins_manage_endpoints(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    hook = await register(
        client, await auth(Role.RESTAURANT_ADMIN, tenant.id), "http://127.0.0.1:9/"
    )
    for role in (Role.MANAGER, Role.CASHIER):
        headers = await auth(role, tenant.id)
        path = f"/api/webhooks/endpoints/{hook['id']}"
        for answer in (
            await client.get("/api/webhooks/event-types", headers=headers),
            await client.patch(path, json={"is_active": False}, headers=headers),
            await client.post(f"{path}/rotate-secret", headers=headers),
        ):
            assert_problem(answer, 403, "role_forbidden")
    other = await auth(Role.RESTAURANT_ADMIN, (await make_tenant(runtime)).id)
    answer = await client.post(f"/api/webhooks/endpoints/{hook['id']}/rotate-secret", headers=other)
    assert_problem(answer, 404, "webhook_endpoint_not_found")  # another tenant's


async def test_enabling_after_410_resumes_the_queue_in_order(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    async with FakeServer() as receiver:
        receiver.script = [Answer(410)]
        hook = await register(client, admin, receiver.url)
        await ping(runtime, tenant.id, 1)
        await ping(runtime, tenant.id, 2)
        await drain(runtime)
        listed = (await client.get("/api/webhooks/endpoints", headers=admin)).json()["items"]
        assert (listed[0]["is_active"], listed[0]["disabled_reason"]) == (
            False,
            "410 Gone from the receiver",
        )
        await ping(runtime, tenant.id, 3)  # while disabled: not queued for it
        await drain(runtime)
        assert len(receiver.requests) == 1

        enabled = await client.patch(
            f"/api/webhooks/endpoints/{hook['id']}", json={"is_active": True}, headers=admin
        )
        assert (enabled.json()["is_active"], enabled.json()["disabled_reason"]) == (True, None)
        await drain(runtime)
        assert len(receiver.requests) == 3  # the queue resumed by itself: events 1 and 2
        await ping(runtime, tenant.id, 4)
        await drain(runtime)
    assert [p["data"]["n"] for p in received(receiver, hook["secret"])] == [1, 1, 2, 4]
    path = f"/api/webhooks/endpoints/{hook['id']}/deliveries"
    log = (await client.get(path, headers=admin)).json()["items"]
    # Newest first; event 1 started a fresh series when the endpoint came back.
    assert [(d["attempt"], d["status_code"]) for d in log] == [
        (1, 200),
        (1, 200),
        (1, 200),
        (1, 410),
    ]
    first = (await client.get(f"{path}?limit=3", headers=admin)).json()
    rest = (await client.get(f"{path}?cursor={first['next_cursor']}", headers=admin)).json()
    assert [d["id"] for d in first["items"] + rest["items"]] == [d["id"] for d in log]
    refused = (await client.get(f"{path}?succeeded=false", headers=admin)).json()["items"]
    assert [d["status_code"] for d in refused] == [410]


async def test_rotating_the_secret_signs_with_both_for_the_grace_period(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    async with FakeServer() as receiver:
        hook = await register(client, admin, receiver.url)
        path = f"/api/webhooks/endpoints/{hook['id']}/rotate-secret"
        rotated = await client.post(path, headers=admin)
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()["secret"]
        assert second.startswith("whsec_")
        assert second != hook["secret"]
        expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
        assert abs(expires - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=1)
        await ping(runtime, tenant.id, 1)
        await drain(runtime)

        third = (await client.post(path, json={"grace_hours": 0}, headers=admin)).json()
        assert third["previous_secret_expires_at"] is None
        await ping(runtime, tenant.id, 2)
        await drain(runtime)
        assert_problem(
            await client.post(path, json={"grace_hours": 1000}, headers=admin),
            422,
            "validation_error",
        )
    during, after = receiver.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (hook["secret"], second):  # either verifies during the grace period
        assert Webhook(secret).verify(during.body, during.headers)["data"] == {"n": 1}
    assert Webhook(third["secret"]).verify(after.body, after.headers)["data"] == {"n": 2}
    for retired in (hook["secret"], second):
        with pytest.raises(WebhookVerificationError):
            Webhook(retired).verify(after.body, after.headers)
    entries = await _audit(runtime, tenant.id, "webhook.secret_rotated")
    assert len(entries) == 2
    assert "whsec_" not in json.dumps([e.after for e in entries])
