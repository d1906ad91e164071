"""iiko: the iikoTransport webhook receiver (events shaped as iikoCloud's OpenAPI document
says) and the admin's iikoCloud actions, against a local iikoCloud."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from datetime import timedelta
from typing import Any
from unittest import mock

import asyncpg
import httpx
import pytest
import time_machine
from pgqueuer import PgQueuer
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.guests.live import card_topic
from maxloyalty.identity.service.contacts import phone_index
from maxloyalty.integrations.pos.iiko import personal as webhook_personal
from maxloyalty.integrations.pos.iiko import webhook as webhook_module
from maxloyalty.integrations.pos.iiko.errors import RetryLater
from maxloyalty.integrations.pos.iiko.sync import REGISTER_JOB, webhook_uri
from maxloyalty.integrations.pos.iiko.webhook import PROCESS_JOB, handle
from maxloyalty.integrations.pos.models import PosEvent, PosTransaction
from maxloyalty.kit import jobs
from maxloyalty.kit.clock import utcnow
from maxloyalty.ledger.models import PointTransaction, TxType
from maxloyalty.runtime import Runtime
from maxloyalty.worker import run_worker
from tests.integrations.iiko_fake import (
    LOGIN,
    UPDATE_WEBHOOKS,
    IikoCloudFake,
    TerminalGroupRow,
    assert_event_conforms,
    error_answer,
)
from tests.integrations.pos.conftest import Till, TillFactory

ORGANIZATION = "7bc05553-4b68-44e8-b7bc-37be63c6d9e9"
OTHER_ORG = "1f6e2a3c-2d2c-4a53-9d0e-0c5a3b7a0b11"
TERMINAL_GROUP = "c9b5d6e2-8f0a-4d6f-a1c1-3e2c0e9a7b01"
OTHER_GROUP = "c9b5d6e2-8f0a-4d6f-a1c1-3e2c0e9a7b02"
PHONE = "+79251234567"
API_LOGIN = "secret-login"
WHEN = "2026-11-22 13:05:00.123"


def _order(
    status: str,
    phone: str | None,
    total: float,
    external: list[dict[str, str]] | None,
    terminal_group: str,
) -> dict[str, Any]:
    """The order fields a table order and a delivery share (TableOrder / Order)."""
    return {
        "status": status,
        "phone": phone,
        "sum": total,
        "number": 42,
        "guestsInfo": {"count": 2, "splitBetweenPersons": False},
        "items": [
            {
                "type": "Product",
                "status": "Served",
                "amount": 2,
                "price": total / 2,
                "cost": total,
                "pricePredefined": False,
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
        "orderType": None,
        "terminalGroupId": terminal_group,
        "processedPaymentsSum": total,
        "externalData": external,
    }


def _event(kind: str, order_id: str, order: dict[str, Any] | None, **info: Any) -> dict[str, Any]:
    return assert_event_conforms(
        {
            "eventType": kind,
            "eventTime": WHEN,
            "organizationId": info.pop("organization", ORGANIZATION),
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
            }
            | info,
        }
    )


def table_event(
    order_id: str,
    *,
    status: str = "Closed",
    phone: str | None = PHONE,
    total: float = 1500.5,
    external: list[dict[str, str]] | None = None,
    terminal_group: str = TERMINAL_GROUP,
    **info: Any,
) -> dict[str, Any]:
    order = _order(status, phone, total, external, terminal_group)
    order |= {"tableIds": [str(uuid.uuid4())], "whenCreated": WHEN, "tabName": None}
    return _event("TableOrderUpdate", order_id, order, **info)


def delivery_event(
    order_id: str,
    *,
    status: str = "Closed",
    phone: str = "+79990001122",
    total: float = 200,
    external: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    order = _order(status, phone, total, external, TERMINAL_GROUP)
    order |= {"completeBefore": WHEN, "whenCreated": WHEN, "cookingStartTime": WHEN}
    return _event("DeliveryOrderUpdate", order_id, order)


def stop_list_event() -> dict[str, Any]:
    return assert_event_conforms(
        {
            "eventType": "StopListUpdate",
            "eventTime": WHEN,
            "organizationId": ORGANIZATION,
            "correlationId": str(uuid.uuid4()),
            "eventInfo": {
                "terminalGroupsStopListsUpdates": [{"id": TERMINAL_GROUP, "isFull": False}]
            },
        }
    )


def card(till: Till) -> list[dict[str, str]]:
    return [{"key": "maxloyalty.card", "value": till.shop.card.code}]


def order_id() -> str:
    return str(uuid.uuid4())


async def _iiko(make_till: TillFactory, base_url: str = "", **fields: Any) -> Till:
    credentials = {"api_login": API_LOGIN} | ({"base_url": base_url} if base_url else {})
    till = await make_till("IIKO", external_id=ORGANIZATION, credentials=credentials, **fields)
    assert till.integration["webhook_token"].startswith("miw_")
    return till


async def _post(till: Till, events: object, token: str | None = None) -> httpx.Response:
    return await till.client.post(
        "/api/pos/iiko/webhook",
        json=events,
        headers={"Authorization": token or till.integration["webhook_token"]},
    )


async def _post_raw(till: Till, content: bytes) -> httpx.Response:
    return await till.client.post(
        "/api/pos/iiko/webhook",
        content=content,
        headers={
            "Authorization": till.integration["webhook_token"],
            "Content-Type": "application/json",
        },
    )


async def drain(runtime: Runtime, workers: int = 1) -> None:
    """Run real workers until no iiko event job is left; they take no other job (the
    accruals' outbox deliveries, say, belong to other tests)."""
    ours = jobs.JobRegistry(jobs={PROCESS_JOB: jobs.registry.jobs[PROCESS_JOB]})

    def build_worker(connection: asyncpg.Connection, ctx: jobs.JobContext) -> PgQueuer:
        with mock.patch.object(jobs, "registry", ours):
            return jobs.build_worker(connection, ctx)

    with mock.patch("maxloyalty.worker.build_worker", build_worker):
        runs = [run_worker(runtime, asyncio.Event(), drain=True) for _ in range(workers)]
        await asyncio.wait_for(asyncio.gather(*runs), timeout=60)


async def _delivered(till: Till, runtime: Runtime, events: list[Any]) -> dict[str, PosEvent]:
    """Post the events, let the worker handle them; the stored events by iiko order id."""
    answer = await _post(till, events)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": len(events)}
    await drain(runtime)
    return {e.external_id or "": e for e in await _events(runtime, till)}


async def _events(runtime: Runtime, till: Till) -> list[PosEvent]:
    async with runtime.db.session(till.shop.tenant.id) as session:
        return list(await session.scalars(select(PosEvent).order_by(PosEvent.received_at)))


async def _checks(runtime: Runtime, till: Till) -> list[PosTransaction]:
    async with runtime.db.session(till.shop.tenant.id) as session:
        return list(await session.scalars(select(PosTransaction)))


async def _balance(till: Till) -> int:
    return int((await till.shop.balance())["balance"])  # type: ignore[call-overload]


# Closed orders


async def test_closed_order_accrues_once_and_a_repeated_event_is_ignored(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till)
    guest = await till.guest(runtime, PHONE)
    order = order_id()
    answer = await _post(till, [table_event(order), stop_list_event()])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 2}
    # Answered at once: the worker does the work.
    assert [e.status.value for e in await _events(runtime, till)] == ["RECEIVED", "RECEIVED"]
    assert await _checks(runtime, till) == []

    await drain(runtime)
    (record,) = await _checks(runtime, till)
    assert (record.card_id, record.check_amount, record.points_accrued) == (guest.id, 150050, 75)
    assert record.items[0]["name"] == "Плов"

    # iiko delivers the same event again: accepted, nothing posted twice.
    assert (await _post(till, [table_event(order)])).status_code == 200
    await drain(runtime)
    events = await _events(runtime, till)
    assert [(e.event_type, e.status.value) for e in events] == [
        ("TableOrderUpdate", "PROCESSED"),
        ("StopListUpdate", "IGNORED"),
        ("TableOrderUpdate", "IGNORED"),
    ]
    assert events[0].payload["eventInfo"]["id"] == order  # the raw event, kept
    assert events[1].detail == "StopListUpdate events are not handled"
    assert events[2].detail == "this order was already accrued"
    assert len(await _checks(runtime, till)) == 1
    guests = await till.client.get(f"/api/guest/{guest.user_id}/balance", headers=till.shop.cashier)
    assert guests.json()["balance"] == 75


async def test_the_job_run_again_handles_nothing_twice(
    make_till: TillFactory, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    """PgQueuer may run a job again (its worker died half way): handled events stay as
    they are."""
    till = await _iiko(make_till)
    assert (await _post(till, [table_event(order_id(), external=card(till))])).status_code == 200
    async with owner_engine.connect() as conn:
        (queued,) = (
            await conn.execute(
                text("SELECT payload FROM pgqueuer WHERE entrypoint = :name"),
                {"name": PROCESS_JOB},
            )
        ).scalars()
    await drain(runtime)
    (first,) = await _events(runtime, till)

    await jobs.registry.jobs[PROCESS_JOB].handler(
        runtime.job_context(),
        json.loads(bytes(queued)),
    )

    (again,) = await _events(runtime, till)
    assert (again.status.value, again.detail, again.processed_at) == (
        "PROCESSED",
        first.detail,
        first.processed_at,
    )
    assert await _balance(till) == 75


async def test_a_passing_failure_leaves_the_event_to_the_jobs_retry(
    make_till: TillFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    till = await _iiko(make_till)
    order = order_id()
    assert (await _post(till, [table_event(order, external=card(till))])).status_code == 200
    (stored,) = await _events(runtime, till)
    real = webhook_module.process
    failures = iter([ConnectionResetError("the database went away")])

    async def flaky(*args: Any) -> None:
        for error in failures:
            raise error
        await real(*args)

    monkeypatch.setattr(webhook_module, "process", flaky)
    payload = {"tenant_id": str(till.shop.tenant.id), "event_ids": [str(stored.id)]}
    ctx = runtime.job_context()
    with pytest.raises(RetryLater):
        await jobs.registry.jobs[PROCESS_JOB].handler(ctx, payload)
    (waiting,) = await _events(runtime, till)
    assert waiting.status.value == "RECEIVED"
    assert waiting.detail is not None
    assert waiting.detail.startswith("will be tried again: ConnectionResetError")
    assert await _balance(till) == 0
    await jobs.registry.jobs[PROCESS_JOB].handler(ctx, payload)  # PgQueuer's retry
    (done,) = await _events(runtime, till)
    assert done.status.value == "PROCESSED"
    assert await _balance(till) == 75


async def test_parallel_duplicates_of_a_closed_order_post_once(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till)
    event = table_event(order_id(), external=card(till))

    answers = await asyncio.gather(*(_post(till, [copy.deepcopy(event)]) for _ in range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    await drain(runtime, workers=3)

    statuses = sorted(e.status.value for e in await _events(runtime, till))
    assert statuses == ["IGNORED"] * 7 + ["PROCESSED"]
    assert len(await _checks(runtime, till)) == 1
    async with runtime.db.session(till.shop.tenant.id) as session:
        accruals = await session.scalar(
            select(func.count())
            .select_from(PointTransaction)
            .where(PointTransaction.type == TxType.ACCRUAL)
        )
    assert accruals == 1
    assert await _balance(till) == 75


async def test_orders_that_ask_nothing_of_us(make_till: TillFactory, runtime: Runtime) -> None:
    till = await _iiko(make_till)
    failed = table_event(order_id(), creationStatus="Error")
    failed["eventInfo"] |= {"order": None, "errorInfo": {"code": "TerminalGroupDisabled"}}
    events = [
        table_event(bill := order_id(), status="Bill"),
        table_event(stranger := order_id(), phone="+79990001122"),
        table_event(order_id(), creationStatus="InProgress"),
        assert_event_conforms(failed),
        delivery_event(delivered := order_id(), status="Delivered", external=card(till)),
        delivery_event(cancelled := order_id(), status="Cancelled", external=card(till)),
        delivery_event(closed := order_id(), external=card(till)),
    ]
    stored = await _delivered(till, runtime, events)
    assert {key: (e.status.value, e.detail) for key, e in stored.items()} == {
        bill: ("IGNORED", "the order is Bill, not Closed"),
        stranger: ("IGNORED", "the order names no member of the programme"),
        events[2]["eventInfo"]["id"]: ("IGNORED", "the order's creationStatus is InProgress"),
        failed["eventInfo"]["id"]: ("IGNORED", "the order's creationStatus is Error"),
        delivered: ("IGNORED", "the order is Delivered, not Closed"),
        cancelled: ("IGNORED", "the order is Cancelled, not Closed"),
        closed: ("PROCESSED", f"accrued 10 points on card {till.shop.card.code}"),
    }
    assert await _balance(till) == 10  # 5 % of the delivery closed with the card code


async def test_a_delivery_is_found_by_the_guests_phone(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till)
    guest = await till.guest(runtime, PHONE)
    delivery = order_id()
    stored = await _delivered(till, runtime, [delivery_event(delivery, phone="8 925 123-45-67")])
    assert stored[delivery].status.value == "PROCESSED"
    (record,) = await _checks(runtime, till)
    assert (record.card_id, record.points_accrued) == (guest.id, 10)


def _with_guest_details(event: dict[str, Any]) -> dict[str, Any]:
    """A delivery event carrying what iiko knows of the guest: card, address, comment."""
    event["eventInfo"]["order"] |= {
        "customer": {
            "type": "regular",
            "id": str(uuid.uuid4()),
            "name": "Вера",
            "surname": "Сидорова",
            "gender": "Female",
            "birthdate": "1991-07-04 00:00:00.000",
            "inBlacklist": False,
        },
        "deliveryPoint": {
            "coordinates": {"latitude": 56.83, "longitude": 60.6},
            "address": {"line1": "ул. Ленина, 5, кв. 12", "flat": "12", "region": None},
            "comment": "домофон 12",
        },
        "comment": "позвонить за 10 минут",
    }
    return assert_event_conforms(event)


GUEST_DETAILS = (
    # The phone as sent and as normalized; not a bare "925", which ids and times can hold.
    "8 925 123-45-67",
    "9251234567",
    "123-45-67",
    "Вера",
    "Сидорова",
    "1991-07-04",
    "Ленина",
    "домофон",
    "позвонить",
)


async def test_the_guests_personal_data_is_kept_apart_and_encrypted(
    make_till: TillFactory, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    till = await _iiko(make_till)
    guest = await till.guest(runtime, PHONE)
    delivery = order_id()
    sent = _with_guest_details(delivery_event(delivery, phone="8 925 123-45-67"))

    stored = await _delivered(till, runtime, [copy.deepcopy(sent)])

    # Still found by the phone, and accrued.
    assert (stored[delivery].status.value, stored[delivery].card_id) == ("PROCESSED", guest.id)
    (record,) = await _checks(runtime, till)
    assert (record.card_id, record.points_accrued) == (guest.id, 10)
    async with owner_engine.connect() as conn:
        payload, personal, phone_hash = (
            await conn.execute(text("SELECT payload::text, personal, phone_hash FROM pos_events"))
        ).one()
    assert [d for d in GUEST_DETAILS if d in payload or d in personal] == []
    assert phone_hash == phone_index(PHONE)
    # What was taken out is what iiko sent, back in memory for processing and replays.
    assert webhook_personal.merged(stored[delivery].payload, stored[delivery].personal) == sent
    listed = await till.client.get(
        f"/api/pos/integrations/{till.integration['id']}/events", headers=till.admin
    )
    assert listed.status_code == 200, listed.text
    (shown,) = listed.json()["items"]
    assert [d for d in GUEST_DETAILS if d in json.dumps(shown, ensure_ascii=False)] == []
    assert shown["payload"]["eventInfo"]["order"]["sum"] == 200


async def test_only_the_integrations_organization_and_terminal_group_count(
    make_till: TillFactory, runtime: Runtime
) -> None:
    """One iiko organization, several restaurants: each integration takes its own terminal
    group's orders."""
    till = await _iiko(make_till, settings={"terminal_group_id": TERMINAL_GROUP.upper()})
    events = [
        table_event(elsewhere := order_id(), external=card(till), organization=OTHER_ORG),
        table_event(next_door := order_id(), external=card(till), terminal_group=OTHER_GROUP),
        # iiko may spell the same id in capitals.
        table_event(ours := order_id(), external=card(till), terminal_group=TERMINAL_GROUP.upper()),
    ]
    stored = await _delivered(till, runtime, events)
    assert {key: (e.status.value, e.detail) for key, e in stored.items()} == {
        elsewhere: ("IGNORED", f"the event is for another iiko organization ({OTHER_ORG})"),
        next_door: ("IGNORED", f"the order is from another terminal group ({OTHER_GROUP})"),
        ours: ("PROCESSED", f"accrued 75 points on card {till.shop.card.code}"),
    }


async def test_an_order_closed_again_with_another_sum_keeps_its_first_posting(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till)
    order = order_id()
    first = await _delivered(till, runtime, [table_event(order, external=card(till))])
    assert first[order].status.value == "PROCESSED"

    assert (await _post(till, [table_event(order, total=1800, external=card(till))])).is_success
    await drain(runtime)

    _, reclosed = await _events(runtime, till)
    assert (reclosed.status.value, reclosed.detail) == (
        "IGNORED",
        "the order was already posted with sum 1500.50; nothing more accrues",
    )
    assert len(await _checks(runtime, till)) == 1
    assert await _balance(till) == 75


# Holds


async def _hold(till: Till, order: str, points: int) -> None:
    """The till's plugin holds points for the order (a 1500.50 ₽ check)."""
    held = await till.call(
        f"/orders/{order}/hold",
        {"card_id": str(till.shop.card.id), "points": points, "check_amount": 150050},
        key=f"h-{order}",
    )
    assert held.status_code == 201, held.text


async def test_an_order_the_till_holds_points_for_is_left_to_the_till(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till)
    await till.credit(100)
    order = order_id()
    await _hold(till, order, 50)
    stored = await _delivered(till, runtime, [table_event(order, external=card(till))])
    assert stored[order].status.value == "IGNORED"
    assert stored[order].detail is not None
    assert "holds points" in stored[order].detail
    commit = await till.call(f"/orders/{order}/commit", {"amount": 150050}, key="c")
    assert commit.status_code == 201, commit.text
    assert commit.json()["redeemed"] == 50


async def test_a_hold_racing_the_closed_orders_accrual_never_outlives_it(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till)
    await till.credit(1000)
    for _ in range(6):
        order = order_id()
        answer = await _post(till, [table_event(order, external=card(till))])
        assert answer.status_code == 200, answer.text
        event = next(e for e in await _events(runtime, till) if e.external_id == order)
        hold = {"card_id": str(till.shop.card.id), "points": 10, "check_amount": 150050}
        handled, held = await asyncio.gather(
            handle(runtime.db, till.shop.tenant.id, event.id),
            till.call(f"/orders/{order}/hold", hold, key=f"h-{order}"),
        )
        # Either the hold came first (the till's commit will post the order) or the
        # accrual did (and the order may not be held any more).
        if held.status_code == 201:
            assert handled.status.value == "IGNORED", handled.detail
        else:
            assert (handled.status.value, held.json()["code"]) == (
                "PROCESSED",
                "order_already_posted",
            )
    await drain(runtime)  # the jobs the webhooks queued find their events handled


async def test_an_order_the_till_already_committed_is_not_posted_again(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till)
    await till.credit(100)
    order = order_id()
    await _hold(till, order, 50)
    commit = await till.call(f"/orders/{order}/commit", {"amount": 150050}, key="c")
    assert commit.status_code == 201, commit.text
    balance = await _balance(till)

    stored = await _delivered(till, runtime, [table_event(order, external=card(till))])

    assert (stored[order].status.value, stored[order].detail) == (
        "IGNORED",
        "the till already posted this order",
    )
    assert await _balance(till) == balance


async def test_a_cancelled_hold_leaves_the_order_to_accrue_a_lapsed_one_to_the_till(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till)
    await till.credit(100)
    cancelled, lapsed = order_id(), order_id()
    for order in (cancelled, lapsed):
        await _hold(till, order, 10)
    assert (await till.call(f"/orders/{cancelled}/cancel", key="x")).status_code == 200

    # The other hold's time runs out (the sweeper has not marked it EXPIRED yet).
    with time_machine.travel(utcnow() + timedelta(hours=1)):
        events = [table_event(o, external=card(till)) for o in (cancelled, lapsed)]
        stored = await _delivered(till, runtime, events)

    assert [stored[o].status.value for o in (cancelled, lapsed)] == ["PROCESSED", "IGNORED"]
    assert await _balance(till) == 100 + 75
    # The guest paid long after the pre-check: the till's commit still spends the points.
    with time_machine.travel(utcnow() + timedelta(hours=1)):
        commit = await till.call(f"/orders/{lapsed}/commit", {"amount": 150050}, key="c")
    assert commit.status_code == 201, commit.text
    assert (commit.json()["redeemed"], commit.json()["balance"]) == (10, 100 + 75 - 10 + 74)


# What the receiver refuses or fails


async def test_malformed_events_fail_alone(make_till: TillFactory, runtime: Runtime) -> None:
    till = await _iiko(make_till)
    nan = table_event(order_id(), external=card(till))
    nan["eventInfo"]["order"]["sum"] = "NaN"
    odd = table_event(order_id(), external=card(till))
    odd["eventInfo"]["order"]["items"] = 7
    huge = table_event(order_id(), external=card(till), total=1e12)
    nameless = table_event(order_id(), external=card(till))
    nameless["eventInfo"]["id"] = None
    fine = table_event(order_id(), external=card(till))
    events = [nan, odd, huge, "not an object", nameless, fine]

    assert (await _post(till, events)).status_code == 200
    await drain(runtime)
    stored = {e.payload.get("correlationId", "?"): e for e in await _events(runtime, till)}

    def outcome(event: dict[str, Any]) -> tuple[str, str | None]:
        row = stored[event["correlationId"]]
        return row.status.value, row.detail

    assert outcome(nan) == ("FAILED", "malformed event: the order sum 'NaN' is not a number")
    assert outcome(huge) == ("FAILED", "malformed event: the order sum is out of range")
    assert outcome(nameless) == ("FAILED", "malformed event: the event carries no order id")
    assert outcome(odd)[0] == "PROCESSED"  # items are only kept, not needed
    assert outcome(fine)[0] == "PROCESSED"
    assert (stored["?"].status.value, stored["?"].detail) == (
        "FAILED",
        "malformed event: the event is not a JSON object",
    )
    assert stored["?"].payload == {"value": "not an object"}
    assert await _balance(till) == 150


async def test_values_jsonb_cannot_keep_never_sink_the_batch(
    make_till: TillFactory, runtime: Runtime
) -> None:
    """NUL characters and lone surrogates are replaced, and the event goes on; numbers JSON
    cannot hold, and absurd depth, fail their own event only."""
    till = await _iiko(make_till)
    nul = table_event(order_id(), external=card(till))
    nul["eventInfo"]["order"]["tabName"] = "Стол\x001"
    surrogate = table_event(order_id(), external=card(till))
    surrogate["eventInfo"]["order"]["items"][0]["product"]["name"] = "Плов \ud800"
    infinite = table_event(order_id(), external=card(till))
    infinite["eventInfo"]["order"]["sum"] = 987654.321
    not_a_number = table_event(order_id(), external=card(till))
    not_a_number["eventInfo"]["order"]["payments"][0]["sum"] = float("nan")
    deep: Any = "bottom"
    for _ in range(40):
        deep = [deep]
    nested = table_event(order_id(), external=card(till))
    nested["eventInfo"]["order"]["tabName"] = deep
    fine = table_event(order_id(), external=card(till))
    odd_keys = {"eventType": "Table\x00Order", "correlationId": "odd", "\ud800\x00": float("inf")}
    events = [nul, surrogate, infinite, not_a_number, nested, fine, odd_keys]
    # As iiko's serializer would write them: escapes in ASCII, and a literal out of range.
    body = json.dumps(events).replace("987654.321", "1e400").encode()
    assert all(part in body for part in [b"\\u0000", b"\\ud800", b"NaN", b"1e400"])

    answer = await _post_raw(till, body)

    assert answer.status_code == 200, answer.text
    await drain(runtime)
    stored = {e.external_id: e for e in await _events(runtime, till)}

    def outcome(event: dict[str, Any]) -> tuple[str, str | None]:
        row = stored[event["eventInfo"]["id"]]
        return row.status.value, row.detail

    assert outcome(nul)[0] == outcome(surrogate)[0] == outcome(fine)[0] == "PROCESSED"
    kept = stored[nul["eventInfo"]["id"]].payload["eventInfo"]["order"]
    assert kept["tabName"] == "Стол\ufffd1"
    kept = stored[surrogate["eventInfo"]["id"]].payload["eventInfo"]["order"]
    assert kept["items"][0]["product"]["name"] == "Плов \ufffd"
    assert outcome(infinite) == (
        "FAILED",
        "malformed event: $.eventInfo.order.sum is not a finite number",
    )
    assert stored[infinite["eventInfo"]["id"]].payload["eventInfo"]["order"]["sum"] is None
    assert outcome(not_a_number) == (
        "FAILED",
        "malformed event: $.eventInfo.order.payments[0].sum is not a finite number",
    )
    status, detail = outcome(nested)
    assert status == "FAILED"
    assert detail is not None
    assert detail.endswith("nests deeper than 32 levels")
    (odd,) = [e for e in stored.values() if e.payload.get("correlationId") == "odd"]
    assert (odd.event_type, odd.status.value, odd.detail) == (
        "Table\ufffdOrder",
        "FAILED",
        "malformed event: $.\ufffd\ufffd is not a finite number",
    )
    assert await _balance(till) == 3 * 75


async def test_bodies_the_receiver_refuses(make_till: TillFactory, runtime: Runtime) -> None:
    till = await _iiko(make_till)
    refusals = {
        "nested": await _post_raw(till, b"[" * 100_000 + b"]" * 100_000),
        "not_json": await _post_raw(till, b"{nope"),
        "not_a_list": await _post(till, {"eventType": "TableOrderUpdate"}),
        "too_many": await _post(till, [stop_list_event()] * 501),
        "too_large": await _post_raw(till, b"[" + b" " * (4 << 20) + b"]"),
    }
    assert {name: (a.status_code, a.json()["code"]) for name, a in refusals.items()} == {
        "nested": (400, "invalid_events"),
        "not_json": (400, "invalid_events"),
        "not_a_list": (400, "invalid_events"),
        "too_many": (400, "invalid_events"),
        "too_large": (413, "payload_too_large"),
    }
    assert {a.headers["content-type"] for a in refusals.values()} == {"application/problem+json"}
    assert await _events(runtime, till) == []
    assert (await _post(till, [stop_list_event()] * 500)).status_code == 200


async def test_the_receiver_refuses_wrong_tokens(make_till: TillFactory, runtime: Runtime) -> None:
    till = await _iiko(make_till)
    token = till.integration["webhook_token"]
    tenant_hex = till.shop.tenant.id.hex
    for bad in ["", "miw_nonsense", f"miw_{tenant_hex}_guessed", f"Bearer {token}x"]:
        answer = await till.client.post(
            "/api/pos/iiko/webhook", json=[], headers={"Authorization": bad}
        )
        assert answer.status_code == 401, bad
        assert answer.json()["code"] == "invalid_webhook_token"
    assert (await _post(till, [], token=f"Bearer {token}")).status_code == 200
    rotated = await till.client.post(
        f"/api/pos/integrations/{till.integration['id']}/rotate-secrets",
        json={},
        headers=till.admin,
    )
    assert rotated.status_code == 200
    assert (await _post(till, [])).status_code == 401  # the old token stopped working
    assert (await _post(till, [], token=rotated.json()["webhook_token"])).status_code == 200


async def test_a_switched_off_integration_is_refused(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till)
    switched = await till.client.patch(
        f"/api/pos/integrations/{till.integration['id']}",
        json={"is_active": False},
        headers=till.admin,
    )
    assert switched.status_code == 200, switched.text

    answer = await _post(till, [table_event(order_id(), external=card(till))])

    assert (answer.status_code, answer.json()["code"]) == (403, "pos_integration_inactive")
    assert await _events(runtime, till) == []


async def test_a_replayed_event_accrues_once_the_guest_has_joined(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till)
    order = order_id()
    stored = await _delivered(till, runtime, [table_event(order, phone="+79257770000")])
    assert stored[order].status.value == "IGNORED"
    await till.guest(runtime, "+79257770000")
    path = f"/api/pos/integrations/{till.integration['id']}/events/{stored[order].id}/replay"
    replayed = await till.client.post(path, headers=till.admin)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["status"] == "PROCESSED"
    again = await till.client.post(path, headers=till.admin)
    assert again.json()["status"] == "IGNORED"


# The admin's iikoCloud actions


def _cloud(**logins: list[str]) -> IikoCloudFake:
    return IikoCloudFake(
        logins=logins or {API_LOGIN: [ORGANIZATION]},
        organizations={ORGANIZATION: "Гриль Хаус"},
        terminal_groups=[
            TerminalGroupRow(TERMINAL_GROUP, ORGANIZATION, "Зал", "Ленина, 1"),
            TerminalGroupRow(OTHER_GROUP, ORGANIZATION, "Летняя веранда", asleep=True),
        ],
    )


async def test_directory_pull_and_webhook_registration_share_one_login(
    make_till: TillFactory, runtime: Runtime
) -> None:
    async with _cloud() as iiko:
        till = await _iiko(make_till, base_url=iiko.url)
        base = f"/api/pos/integrations/{till.integration['id']}"
        pulled = await till.client.post(f"{base}/iiko/directory", headers=till.admin)
        assert pulled.status_code == 200, pulled.text
        assert pulled.json()["result"] == {
            "organizations": [{"id": ORGANIZATION, "name": "Гриль Хаус"}],
            "terminal_groups": [
                {
                    "id": TERMINAL_GROUP,
                    "organization_id": ORGANIZATION,
                    "name": "Зал",
                    "address": "Ленина, 1",
                    "asleep": False,
                },
                {
                    "id": OTHER_GROUP,
                    "organization_id": ORGANIZATION,
                    "name": "Летняя веранда",
                    "address": "",
                    "asleep": True,
                },
            ],
        }
        registered = await till.client.post(f"{base}/iiko/webhook", headers=till.admin)
        assert registered.status_code == 200, registered.text
        assert registered.json()["result"]["uri"] == webhook_uri(runtime.settings)
        sent = iiko.webhook_settings[(API_LOGIN, ORGANIZATION)]
        assert sent["authToken"] == till.integration["webhook_token"]
        assert sent["webHooksUri"] == webhook_uri(runtime.settings)
        # Two calls, two clients, one token: it waited in the cache between them.
        assert iiko.paths().count(LOGIN) == 1
        info = await till.client.get(base, headers=till.admin)
        assert info.json()["last_sync_at"] is not None
    assert iiko.violations == []


async def test_iiko_failures_are_recorded_and_retried(
    make_till: TillFactory, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    async with _cloud(**{"another-login": [ORGANIZATION]}) as iiko:
        till = await _iiko(make_till, base_url=iiko.url)
        base = f"/api/pos/integrations/{till.integration['id']}"
        refused = await till.client.post(f"{base}/iiko/webhook", headers=till.admin)
        assert (refused.status_code, refused.json()["code"]) == (502, "pos_unavailable")
        assert "is not authorized" in refused.json()["detail"]
        assert API_LOGIN not in refused.json()["detail"]

        iiko.logins[API_LOGIN] = [ORGANIZATION]  # the apiLogin is set up in iikoWeb
        iiko.inject(UPDATE_WEBHOOKS, error_answer(500, "busy"))
        busy = await till.client.post(f"{base}/iiko/webhook", headers=till.admin)
        assert busy.status_code == 502
        syncs = (await till.client.get(f"{base}/syncs", headers=till.admin)).json()["items"]
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

        await jobs.registry.jobs[REGISTER_JOB].handler(
            runtime.job_context(),
            json.loads(bytes(queued[0])),
        )

        syncs = (await till.client.get(f"{base}/syncs", headers=till.admin)).json()["items"]
        assert (syncs[0]["status"], syncs[0]["attempt"]) == ("SUCCESS", 2)
        assert (API_LOGIN, ORGANIZATION) in iiko.webhook_settings
    assert iiko.violations == []


async def test_a_closed_order_handled_by_the_worker_publishes_the_new_balance(
    make_till: TillFactory, runtime: Runtime
) -> None:
    till = await _iiko(make_till)
    guest = await till.guest(runtime, PHONE)
    async with runtime.live.subscribe(card_topic(guest.id)) as on_card:
        assert (await _post(till, [table_event(order_id())])).status_code == 200
        await drain(runtime)
        message = await asyncio.wait_for(anext(on_card), 2)
    assert message is not None
    assert (message["card_id"], message["balance"]) == (str(guest.id), 75)
