"""iiko: the iikoTransport webhook receiver and the admin's iikoCloud actions, against a
local server speaking iikoCloud's wire format."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.integrations.pos.iiko.sync import REGISTER_JOB, webhook_uri
from maxloyalty.integrations.pos.models import PosEvent, PosTransaction
from maxloyalty.kit import jobs
from maxloyalty.runtime import Runtime
from tests.factories import make_guest
from tests.integrations.fake_http import FakeServer, json_answer
from tests.integrations.pos.conftest import Till, TillFactory

ORGANIZATION = "7bc05553-4b68-44e8-b7bc-37be63c6d9e9"
PHONE = "+79251234567"


def _order_event(
    order_id: str,
    *,
    status: str = "Closed",
    phone: str | None = PHONE,
    total: float = 1500.5,
    kind: str = "TableOrderUpdate",
    external: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    order: dict[str, Any] = {
        "tableIds": [str(uuid.uuid4())],
        "status": status,
        "sum": total,
        "number": 42,
        "items": [
            {
                "type": "Product",
                "status": "Printed",
                "amount": 2,
                "price": 750.25,
                "product": {"id": str(uuid.uuid4()), "name": "Плов"},
            }
        ],
        "payments": [
            {
                "paymentType": {"id": str(uuid.uuid4()), "name": "Наличные", "kind": "Cash"},
                "sum": total,
                "isPreliminary": False,
                "isExternal": False,
                "isProcessedExternally": False,
                "isPrepay": False,
            }
        ],
        "processedPaymentsSum": total,
        "terminalGroupId": str(uuid.uuid4()),
    }
    if phone is not None:
        order["phone"] = phone
    if external is not None:
        order["externalData"] = external
    return {
        "eventType": kind,
        "eventTime": "2026-11-22 13:05:00.123",
        "organizationId": ORGANIZATION,
        "correlationId": str(uuid.uuid4()),
        "eventInfo": {
            "id": order_id,
            "posId": str(uuid.uuid4()),
            "externalNumber": None,
            "organizationId": ORGANIZATION,
            "timestamp": 1763816700,
            "creationStatus": "Success",
            "errorInfo": None,
            "order": order,
        },
    }


async def _iiko(make_till: TillFactory, runtime: Runtime, base_url: str = "") -> Till:
    credentials = {"api_login": "secret-login"} | ({"base_url": base_url} if base_url else {})
    till = await make_till("IIKO", external_id=ORGANIZATION, credentials=credentials)
    assert till.integration["webhook_token"].startswith("miw_")
    return till


async def _post(till: Till, events: object, token: str | None = None) -> httpx.Response:
    return await till.client.post(
        "/api/pos/iiko/webhook",
        json=events,
        headers={"Authorization": token or till.integration["webhook_token"]},
    )


async def _events(runtime: Runtime, till: Till) -> list[PosEvent]:
    async with runtime.db.session(till.shop.tenant.id) as session:
        return list(await session.scalars(select(PosEvent).order_by(PosEvent.received_at)))


async def _balance(till: Till) -> int:
    return int((await till.shop.balance())["balance"])  # type: ignore[call-overload]


async def test_closed_order_accrues_once_and_unknown_events_are_kept(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till, runtime)
    guest = await make_guest(
        runtime, till.shop.system, phone=PHONE, restaurant_id=till.shop.restaurant.id
    )
    order = str(uuid.uuid4())
    stop_list = {"eventType": "StopListUpdate", "organizationId": ORGANIZATION, "eventInfo": {}}
    answer = await _post(till, [_order_event(order), stop_list])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 2}
    async with runtime.db.session(till.shop.tenant.id) as session:
        record = await session.scalar(select(PosTransaction))
    assert record is not None
    assert (record.card_id, record.check_amount, record.points_accrued) == (guest.id, 150050, 75)
    assert record.items[0]["name"] == "Плов"

    # iiko delivers the same event again: accepted, nothing posted twice.
    assert (await _post(till, [_order_event(order)])).status_code == 200
    events = await _events(runtime, till)
    assert [(e.event_type, e.status.value) for e in events] == [
        ("TableOrderUpdate", "PROCESSED"),
        ("StopListUpdate", "IGNORED"),
        ("TableOrderUpdate", "IGNORED"),
    ]
    assert events[0].payload["eventInfo"]["id"] == order  # the raw event, kept
    assert events[2].detail == "this order was already accrued"
    guests = await till.client.get(f"/api/guest/{guest.user_id}/balance", headers=till.shop.cashier)
    assert guests.json()["balance"] == 75


async def test_orders_that_ask_nothing_of_us(make_till: TillFactory, runtime: Runtime) -> None:
    till = await _iiko(make_till, runtime)
    code = till.shop.card.code
    events = [
        _order_event(str(uuid.uuid4()), status="Bill"),
        _order_event(str(uuid.uuid4()), phone="+79990001122"),  # not a member
        _order_event(
            str(uuid.uuid4()),
            phone=None,
            total=200,
            kind="DeliveryOrderUpdate",
            external=[{"key": "maxloyalty.card", "value": code}],
        ),
    ]
    assert (await _post(till, events)).status_code == 200
    stored = await _events(runtime, till)
    assert [e.status.value for e in stored] == ["IGNORED", "IGNORED", "PROCESSED"]
    assert stored[0].detail == "the order is not closed"
    assert stored[1].detail == "the order names no member of the programme"
    assert await _balance(till) == 10  # 5 % of the delivery paid with the card code


async def test_malformed_events_fail_alone(make_till: TillFactory, runtime: Runtime) -> None:
    till = await _iiko(make_till, runtime)
    code = till.shop.card.code
    card = [{"key": "maxloyalty.card", "value": code}]
    nan = _order_event("nan", phone=None, external=card)
    nan["eventInfo"]["order"]["sum"] = "NaN"
    odd = _order_event("odd", phone=None, external=card)
    odd["eventInfo"]["order"]["items"] = 7
    huge = _order_event("huge", phone=None, external=card, total=1e12)
    events = [nan, odd, huge, "not an object", _order_event("fine", phone=None, external=card)]
    answer = await _post(till, events)
    assert answer.status_code == 200, answer.text
    stored = {e.external_id: e for e in await _events(runtime, till)}
    assert stored["nan"].status.value == "IGNORED"
    assert stored["huge"].status.value == "IGNORED"
    assert stored["odd"].status.value == "PROCESSED"  # items are only kept, not needed
    assert stored["fine"].status.value == "PROCESSED"
    assert await _balance(till) == 150


async def test_an_order_the_till_holds_points_for_is_left_to_the_till(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till, runtime)
    await till.credit(100)
    order = str(uuid.uuid4())
    held = await till.call(
        f"/orders/{order}/hold",
        {"card_id": str(till.shop.card.id), "points": 50, "check_amount": 150050},
        key="h",
    )
    assert held.status_code == 201, held.text
    external = [{"key": "maxloyalty.card", "value": till.shop.card.code}]
    assert (await _post(till, [_order_event(order, external=external)])).status_code == 200
    (event,) = await _events(runtime, till)
    assert event.status.value == "IGNORED"
    assert event.detail is not None
    assert "holds points" in event.detail
    commit = await till.call(f"/orders/{order}/commit", {"amount": 150050}, key="c")
    assert commit.status_code == 201, commit.text
    assert commit.json()["redeemed"] == 50


async def test_a_replayed_event_accrues_once_the_guest_has_joined(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till, runtime)
    assert (await _post(till, [_order_event("ord-1", phone="+79257770000")])).status_code == 200
    (event,) = await _events(runtime, till)
    assert event.status.value == "IGNORED"
    await make_guest(
        runtime, till.shop.system, phone="+79257770000", restaurant_id=till.shop.restaurant.id
    )
    path = f"/api/pos/integrations/{till.integration['id']}/events/{event.id}/replay"
    replayed = await till.client.post(path, headers=till.admin)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["status"] == "PROCESSED"
    again = await till.client.post(path, headers=till.admin)
    assert again.json()["status"] == "IGNORED"


async def test_the_receiver_refuses_wrong_tokens_and_bodies(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till, runtime)
    token = till.integration["webhook_token"]
    tenant_hex = till.shop.tenant.id.hex
    for bad in ["", "miw_nonsense", f"miw_{tenant_hex}_guessed", f"Bearer {token}x"]:
        answer = await till.client.post(
            "/api/pos/iiko/webhook", json=[], headers={"Authorization": bad}
        )
        assert answer.status_code == 401, bad
        assert answer.json()["code"] == "invalid_webhook_token"
    assert (await _post(till, [], token=f"Bearer {token}")).status_code == 200
    not_a_list = await _post(till, {"eventType": "TableOrderUpdate"})
    assert (not_a_list.status_code, not_a_list.json()["code"]) == (400, "invalid_events")
    garbage = await till.client.post(
        "/api/pos/iiko/webhook", content=b"{nope", headers={"Authorization": token}
    )
    assert garbage.status_code == 400
    rotated = await till.client.post(
        f"/api/pos/integrations/{till.integration['id']}/rotate-secrets",
        json={},
        headers=till.admin,
    )
    assert rotated.status_code == 200
    assert (await _post(till, [])).status_code == 401  # the old token stopped working
    assert (await _post(till, [], token=rotated.json()["webhook_token"])).status_code == 200


async def test_directory_pull_and_webhook_registration(
    make_till: TillFactory, runtime: Runtime
) -> None:
    async with FakeServer() as iiko:
        till = await _iiko(make_till, runtime, base_url=iiko.url)
        iiko.script = [
            json_answer({"correlationId": str(uuid.uuid4()), "token": "T1"}),
            json_answer(
                {
                    "correlationId": str(uuid.uuid4()),
                    "organizations": [{"id": ORGANIZATION, "name": "Гриль Хаус"}],
                }
            ),
            json_answer(
                {
                    "correlationId": str(uuid.uuid4()),
                    "terminalGroups": [
                        {
                            "organizationId": ORGANIZATION,
                            "items": [
                                {
                                    "id": "tg-1",
                                    "organizationId": ORGANIZATION,
                                    "name": "Зал",
                                    "address": "Ленина, 1",
                                    "timeZone": "Russia TZ 4 Standard Time",
                                }
                            ],
                        }
                    ],
                    "terminalGroupsInSleep": [],
                }
            ),
            json_answer({"correlationId": str(uuid.uuid4()), "token": "T2"}),
            json_answer({"correlationId": "c-42"}),
        ]
        base = f"/api/pos/integrations/{till.integration['id']}"
        pulled = await till.client.post(f"{base}/iiko/directory", headers=till.admin)
        assert pulled.status_code == 200, pulled.text
        assert pulled.json()["result"]["terminal_groups"][0]["name"] == "Зал"
        registered = await till.client.post(f"{base}/iiko/webhook", headers=till.admin)
        assert registered.status_code == 200, registered.text
        assert registered.json()["result"]["correlation_id"] == "c-42"
        update = iiko.requests[-1]
        assert update.path == "/api/1/webhooks/update_settings"
        assert update.headers["authorization"] == "Bearer T2"
        sent = httpx.Response(200, content=update.body).json()
        assert sent["authToken"] == till.integration["webhook_token"]
        assert sent["webHooksUri"] == webhook_uri(runtime.settings)
        assert sent["organizationId"] == ORGANIZATION
        info = await till.client.get(base, headers=till.admin)
        assert info.json()["last_sync_at"] is not None


async def test_iiko_failures_are_recorded_and_retried(
    make_till: TillFactory, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    async with FakeServer() as iiko:
        till = await _iiko(make_till, runtime, base_url=iiko.url)
        base = f"/api/pos/integrations/{till.integration['id']}"
        iiko.script = [
            json_answer(
                {"correlationId": "x", "errorDescription": "Login not found", "error": "x"},
                status=401,
            )
        ]
        refused = await till.client.post(f"{base}/iiko/webhook", headers=till.admin)
        assert (refused.status_code, refused.json()["code"]) == (502, "pos_unavailable")
        iiko.script = [
            json_answer({"correlationId": "y", "token": "T"}),
            json_answer({"correlationId": "y", "errorDescription": "busy"}, status=503),
        ]
        busy = await till.client.post(f"{base}/iiko/webhook", headers=till.admin)
        assert busy.status_code == 502
        syncs = (await till.client.get(f"{base}/syncs", headers=till.admin)).json()
        assert [(s["status"], s["attempt"]) for s in syncs] == [("FAILED", 1), ("FAILED", 1)]
        assert syncs[0]["next_retry_at"] is not None  # iiko was busy: try again later
        assert syncs[1]["next_retry_at"] is None  # a wrong apiLogin will not heal by itself
        async with owner_engine.connect() as conn:
            queued = (
                (
                    await conn.execute(
                        text("SELECT payload FROM pgqueuer WHERE entrypoint = :name"),
                        {"name": REGISTER_JOB},
                    )
                )
                .scalars()
                .all()
            )
        assert len(queued) == 1
        iiko.script = [
            json_answer({"correlationId": "z", "token": "T"}),
            json_answer({"correlationId": "done"}),
        ]
        payload = httpx.Response(200, content=bytes(queued[0])).json()
        await jobs.registry.jobs[REGISTER_JOB].handler(
            jobs.JobContext(db=runtime.db, settings=runtime.settings), payload
        )
        syncs = (await till.client.get(f"{base}/syncs", headers=till.admin)).json()
        assert (syncs[0]["status"], syncs[0]["attempt"]) == ("SUCCESS", 2)
