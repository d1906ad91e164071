"""Guest sign-in by SMS code and by Telegram Mini App."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
import pytest
import time_machine
from sqlalchemy import func, select

from maxloyalty.identity.models import Consent, ConsentKind, OtpCode, User, UserRole
from maxloyalty.integrations.sms import SentSms, SmsError
from maxloyalty.integrations.sms.console import ConsoleSmsSender
from maxloyalty.kit.clock import utcnow
from maxloyalty.runtime import Runtime
from tests.conftest import TELEGRAM_BOT_TOKEN
from tests.factories import bearer, make_tenant
from tests.identity.test_primitives import signed_init_data
from tests.test_app import assert_problem

PHONE = "+7 925 123-45-67"
E164 = "+79251234567"
CONSENTS = {"privacy_policy": True, "personal_data": True, "marketing": True}


def last_code(runtime: Runtime) -> str:
    assert isinstance(runtime.sms, ConsoleSmsSender)
    phone, text = runtime.sms.outbox[-1]
    assert phone == E164
    match = re.search(r"\b(\d{6})\b", text)
    assert match is not None
    return match.group(1)


async def register(
    client: httpx.AsyncClient, tenant_id: uuid.UUID, extra: dict[str, object] | None = None
) -> httpx.Response:
    body = {"phone": PHONE, "tenant_id": str(tenant_id), "consents": CONSENTS} | (extra or {})
    return await client.post("/api/auth/register", json=body)


async def verify(client: httpx.AsyncClient, tenant_id: uuid.UUID, code: str) -> httpx.Response:
    return await client.post(
        "/api/auth/verify", json={"phone": PHONE, "tenant_id": str(tenant_id), "code": code}
    )


async def test_register_and_verify_creates_guest(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    sent = await register(client, tenant.id, {"referral_code": "FRIEND1"})
    assert sent.status_code == 202, sent.text
    assert sent.json() == {"expires_in": 300, "resend_after": 60}
    code = last_code(runtime)

    answer = await verify(client, tenant.id, code)
    assert answer.status_code == 200, answer.text
    me = (await client.get("/api/auth/me", headers=bearer(answer.json()))).json()
    assert me["role"] == "GUEST"
    assert me["tenant_id"] == str(tenant.id)

    async with runtime.db.transaction(tenant.id, uuid.UUID(me["subject"])) as session:
        user = await session.get(User, uuid.UUID(me["subject"]))
        consents = {c.kind: c.granted for c in await session.scalars(select(Consent))}
        stored = await session.scalar(select(OtpCode))
    assert user is not None
    assert user.phone == E164
    assert user.phone_verified
    assert consents == {
        ConsentKind.PRIVACY_POLICY: True,
        ConsentKind.PERSONAL_DATA: True,
        ConsentKind.MARKETING: True,
    }
    assert stored is not None
    assert code not in stored.code_hash
    assert stored.registration["referral_code"] == "FRIEND1"
    # Single use.
    assert_problem(await verify(client, tenant.id, code), 400, "otp_invalid")


async def test_guest_of_two_networks_is_one_person(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    a, b = await make_tenant(runtime), await make_tenant(runtime)
    for tenant in (a, b):
        await register(client, tenant.id)
        assert (await verify(client, tenant.id, last_code(runtime))).status_code == 200
        await runtime.limiter.reset()  # the resend cooldown is per phone
    async with runtime.db.platform_session() as platform:
        users = await platform.scalar(select(func.count()).select_from(User))
        roles = await platform.scalar(select(func.count()).select_from(UserRole))
    assert (users, roles) == (1, 2)


async def test_wrong_codes_kill_the_code_after_five(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The phone's own lock (tests/identity/test_auth_limits.py) set wide, to see the code's.
    monkeypatch.setattr(runtime.settings, "rate_limit_login_failures", "50 per 15 minutes")
    tenant = await make_tenant(runtime)
    await register(client, tenant.id)
    code = last_code(runtime)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    details = []
    for _ in range(5):
        answer = await verify(client, tenant.id, wrong)
        details.append(assert_problem(answer, 400, "otp_invalid")["detail"])
    assert details[0] == "The code is wrong; 4 attempts left."
    # Even the right code is refused now.
    assert_problem(await verify(client, tenant.id, code), 400, "otp_invalid")


async def test_code_expires(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    await register(client, tenant.id)
    code = last_code(runtime)
    with time_machine.travel(utcnow() + timedelta(seconds=301)):
        assert_problem(await verify(client, tenant.id, code), 400, "otp_invalid")


async def test_resend_cooldown_and_per_phone_limit(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    assert (await register(client, tenant.id)).status_code == 202
    again = await register(client, tenant.id)
    assert_problem(again, 429, "otp_cooldown")
    assert 55 <= int(again.headers["Retry-After"]) <= 60
    statuses = []
    for minutes in range(1, 6):
        with time_machine.travel(utcnow() + timedelta(minutes=minutes * 2)):
            statuses.append((await register(client, tenant.id)).status_code)
    # 5 per hour per phone: the first send and 4 more pass, then the limit holds.
    assert statuses == [202, 202, 202, 202, 429]


async def test_new_code_retires_the_previous_one(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    await register(client, tenant.id)
    first = last_code(runtime)
    with time_machine.travel(utcnow() + timedelta(seconds=61)):
        await register(client, tenant.id)
        second = last_code(runtime)
        if first != second:
            assert_problem(await verify(client, tenant.id, first), 400, "otp_invalid")
        assert (await verify(client, tenant.id, second)).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"phone": "12345"}, 422, "invalid_phone"),
        ({"phone": "12"}, 422, "invalid_phone"),
        ({"consents": {"privacy_policy": True, "personal_data": False}}, 422, "consent_required"),
        ({"tenant_id": "0190d5a0-0000-7000-8000-000000000000"}, 404, "tenant_not_found"),
        ({"phone": None}, 422, "validation_error"),
    ],
)
async def test_bad_registrations(
    client: httpx.AsyncClient, runtime: Runtime, body: dict[str, object], status: int, code: str
) -> None:
    tenant = await make_tenant(runtime)
    assert_problem(await register(client, tenant.id, body), status, code)
    async with runtime.db.transaction(tenant.id) as session:
        assert await session.scalar(select(func.count()).select_from(OtpCode)) == 0


class DownSms:
    async def send(self, phone: str, text: str) -> SentSms:
        raise SmsError("smsru", "network", "connection refused", retryable=True)

    async def aclose(self) -> None:
        return None


async def test_sms_failure_stores_nothing(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    working = runtime.sms
    runtime.sms = DownSms()
    try:
        assert_problem(await register(client, tenant.id), 503, "sms_unavailable")
    finally:
        runtime.sms = working
    async with runtime.db.transaction(tenant.id) as session:
        assert await session.scalar(select(func.count()).select_from(OtpCode)) == 0


async def test_telegram_login_links_by_telegram_id(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    init_data = signed_init_data(TELEGRAM_BOT_TOKEN, user_id=777)
    body = {"init_data": init_data, "tenant_id": str(tenant.id)}
    first = await client.post("/api/auth/telegram", json=body)
    assert first.status_code == 200, first.text
    second = await client.post("/api/auth/telegram", json=body)
    me1 = (await client.get("/api/auth/me", headers=bearer(first.json()))).json()
    me2 = (await client.get("/api/auth/me", headers=bearer(second.json()))).json()
    assert me1["subject"] == me2["subject"]
    assert me1["role"] == "GUEST"

    forged = signed_init_data("41:OTHER", user_id=777)
    answer = await client.post("/api/auth/telegram", json=body | {"init_data": forged})
    assert_problem(answer, 401, "invalid_init_data")
    stale = signed_init_data(TELEGRAM_BOT_TOKEN, user_id=777, auth_date=1_650_000_000)
    answer = await client.post("/api/auth/telegram", json=body | {"init_data": stale})
    assert_problem(answer, 401, "invalid_init_data")


async def test_non_ascii_signatures_are_401(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tenant = await make_tenant(runtime)
    answer = await client.post(
        "/api/auth/telegram",
        json={"init_data": "auth_date=1&user=%7B%7D&hash=%C3%A9", "tenant_id": str(tenant.id)},
    )
    assert_problem(answer, 401, "invalid_init_data")
