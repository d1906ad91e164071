"""SMS adapters against a local HTTP server that speaks each provider's real wire format."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import httpx
import pytest
import structlog
from structlog.testing import capture_logs
from structlog.typing import EventDict

from maxloyalty.integrations.sms import SentSms, SmsConfig, SmsError, SmsSender, sms_sender
from maxloyalty.integrations.sms.console import ConsoleSmsSender
from maxloyalty.integrations.sms.smsc import SmscSender
from maxloyalty.integrations.sms.smsru import SmsRuSender
from tests.integrations.fake_http import Answer, FakeServer, json_answer, unused_url

PHONE = "+79251234567"
DIGITS = "79251234567"
TEXT = "Код для входа: 4821"
TWILIO_SID = "AC0123456789abcdef0123456789abcdef"

CONFIGS = {
    "smsru": SmsConfig(provider="smsru", smsru_api_id="smsru-api-id"),
    "smsc": SmsConfig(provider="smsc", smsc_login="rest", smsc_password="smsc-secret"),
    "twilio": SmsConfig(
        provider="twilio",
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token="twilio-token",
        twilio_from="+15005550006",
    ),
}
HTTP_PROVIDERS = pytest.mark.parametrize("provider", sorted(CONFIGS))


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    async with FakeServer() as fake:
        yield fake


def sender(config: SmsConfig, url: str) -> aclosing[SmsSender]:
    return aclosing(sms_sender(replace(config, base_url=url)))


async def send_error(config: SmsConfig, url: str) -> SmsError:
    async with sender(config, url) as sms:
        with pytest.raises(SmsError) as caught:
            await sms.send(PHONE, TEXT)
    assert caught.value.provider == config.provider
    return caught.value


# SMS.ru


async def test_smsru_sends_digits_in_form_and_returns_sms_id(server: FakeServer) -> None:
    server.answer = json_answer(
        {
            "status": "OK",
            "status_code": 100,
            "sms": {DIGITS: {"status": "OK", "status_code": 100, "sms_id": "000000-10000000"}},
            "balance": 4122.56,
        }
    )
    async with sender(CONFIGS["smsru"], server.url) as sms:
        assert await sms.send(PHONE, TEXT) == SentSms("smsru", "000000-10000000")

    [request] = server.requests
    assert (request.method, request.path, request.query) == ("POST", "/sms/send", {})
    assert request.form == {"api_id": "smsru-api-id", "to": DIGITS, "msg": TEXT, "json": "1"}


@pytest.mark.parametrize(
    ("status_code", "text", "retryable"),
    [(200, "Неправильный api_id", False), (220, "Сервис временно недоступен", True)],
)
async def test_smsru_request_error(
    server: FakeServer, status_code: int, text: str, retryable: bool
) -> None:
    server.answer = json_answer(
        {"status": "ERROR", "status_code": status_code, "status_text": text}
    )
    error = await send_error(CONFIGS["smsru"], server.url)
    assert (error.code, error.message, error.retryable) == (str(status_code), text, retryable)


async def test_smsru_number_error_under_ok_request(server: FakeServer) -> None:
    refused = {
        "status": "ERROR",
        "status_code": 207,
        "status_text": "На этот номер нельзя отправлять сообщения",
    }
    server.answer = json_answer({"status": "OK", "status_code": 100, "sms": {DIGITS: refused}})
    error = await send_error(CONFIGS["smsru"], server.url)
    assert (error.code, error.retryable) == ("207", False)


# SMSC.ru


async def test_smsc_sends_login_and_digits_and_returns_id(server: FakeServer) -> None:
    server.answer = json_answer({"id": 123, "cnt": 1})
    async with sender(CONFIGS["smsc"], server.url) as sms:
        assert await sms.send(PHONE, TEXT) == SentSms("smsc", "123")

    [request] = server.requests
    assert (request.method, request.path, request.query) == ("POST", "/sys/send.php", {})
    assert request.form == {
        "login": "rest",
        "psw": "smsc-secret",
        "phones": DIGITS,
        "mes": TEXT,
        "fmt": "3",
        "charset": "utf-8",
    }


async def test_smsc_apikey_replaces_login(server: FakeServer) -> None:
    server.answer = json_answer({"id": 124, "cnt": 1})
    config = SmsConfig(provider="smsc", smsc_apikey="smsc-key")
    async with sender(config, server.url) as sms:
        await sms.send(PHONE, TEXT)

    [request] = server.requests
    assert request.form["apikey"] == "smsc-key"
    assert "login" not in request.form
    assert "psw" not in request.form


@pytest.mark.parametrize(
    ("error_code", "text", "retryable"),
    [
        (2, "authorise error", False),
        (3, "no money", False),
        (4, "IP address is temporarily blocked", True),
        (9, "duplicate request, wait a minute", True),
    ],
)
async def test_smsc_error(server: FakeServer, error_code: int, text: str, retryable: bool) -> None:
    server.answer = json_answer({"error": text, "error_code": error_code})
    error = await send_error(CONFIGS["smsc"], server.url)
    assert (error.code, error.message, error.retryable) == (str(error_code), text, retryable)


# Twilio


async def test_twilio_posts_e164_with_basic_auth_and_returns_sid(server: FakeServer) -> None:
    sid = "SM0123456789abcdef0123456789abcdef"
    server.answer = json_answer({"sid": sid, "status": "queued"}, status=201)
    async with sender(CONFIGS["twilio"], server.url) as sms:
        assert await sms.send(PHONE, TEXT) == SentSms("twilio", sid)

    [request] = server.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert request.form == {"To": PHONE, "Body": TEXT, "From": "+15005550006"}
    credentials = base64.b64encode(f"{TWILIO_SID}:twilio-token".encode()).decode()
    assert request.headers["authorization"] == f"Basic {credentials}"


async def test_twilio_messaging_service_replaces_from(server: FakeServer) -> None:
    server.answer = json_answer({"sid": "SM1", "status": "accepted"}, status=201)
    config = replace(CONFIGS["twilio"], twilio_from=None, twilio_messaging_service_sid="MG1")
    async with sender(config, server.url) as sms:
        await sms.send(PHONE, TEXT)

    [request] = server.requests
    assert request.form == {"To": PHONE, "Body": TEXT, "MessagingServiceSid": "MG1"}


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(400, 21211, False), (401, 20003, False), (429, 20429, True), (503, 20503, True)],
)
async def test_twilio_error(server: FakeServer, status: int, code: int, retryable: bool) -> None:
    body = {
        "code": code,
        "message": "The 'To' number +7925 is not a valid phone number.",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    server.answer = json_answer(body, status=status)
    error = await send_error(CONFIGS["twilio"], server.url)
    assert (error.code, error.message, error.retryable) == (str(code), body["message"], retryable)


# Failures every HTTP provider shares


@HTTP_PROVIDERS
async def test_dropped_connection_is_retryable_network_error(
    server: FakeServer, provider: str
) -> None:
    server.answer = "drop"
    error = await send_error(CONFIGS[provider], server.url)
    assert (error.code, error.retryable) == ("network", True)
    assert len(server.requests) == 1


@HTTP_PROVIDERS
async def test_unreachable_provider_is_retryable_network_error(provider: str) -> None:
    error = await send_error(CONFIGS[provider], unused_url())
    assert (error.code, error.retryable) == ("network", True)


async def test_timeout_is_retryable_network_error(server: FakeServer) -> None:
    server.answer = "hang"
    async with aclosing(SmsRuSender("smsru-api-id", base_url=server.url, timeout=0.1)) as sms:
        with pytest.raises(SmsError) as caught:
            await sms.send(PHONE, TEXT)
    assert (caught.value.code, caught.value.retryable) == ("network", True)
    assert "Timeout" in caught.value.message


@HTTP_PROVIDERS
async def test_non_json_answer_is_retryable_bad_response(server: FakeServer, provider: str) -> None:
    server.answer = Answer(200, b"<html>502 Bad Gateway</html>", "text/html")
    error = await send_error(CONFIGS[provider], server.url)
    assert (error.code, error.retryable) == ("bad_response", True)


@HTTP_PROVIDERS
@pytest.mark.parametrize("phone", ["79251234567", "+7 925 123-45-67", "+0123456789", ""])
async def test_malformed_phone_is_refused_without_a_request(
    server: FakeServer, provider: str, phone: str
) -> None:
    async with sender(CONFIGS[provider], server.url) as sms:
        with pytest.raises(SmsError) as caught:
            await sms.send(phone, TEXT)
    assert (caught.value.code, caught.value.retryable) == ("invalid_phone", False)
    assert server.requests == []


async def test_injected_client_is_used_and_left_open(server: FakeServer) -> None:
    server.answer = json_answer({"id": 7, "cnt": 1})
    async with httpx.AsyncClient(headers={"X-Probe": "injected"}) as client:
        sms = SmscSender("rest", "smsc-secret", base_url=server.url, client=client)
        await sms.send(PHONE, TEXT)
        await sms.aclose()
        assert not client.is_closed
    assert server.requests[0].headers["x-probe"] == "injected"


# Console


@pytest.fixture
def logs() -> Iterator[list[EventDict]]:
    """Captured log events, whatever level filter another test's configuration left behind."""
    saved: dict[str, Any] = structlog.get_config()
    structlog.reset_defaults()
    try:
        with capture_logs() as captured:
            yield captured
    finally:
        structlog.configure(**saved)


async def test_console_keeps_message_and_logs_masked_phone(logs: list[EventDict]) -> None:
    sms = ConsoleSmsSender()
    sent = await sms.send(PHONE, TEXT)

    assert sent.provider == "console"
    assert sent.message_id is not None
    assert len(sent.message_id) == 32
    assert sms.outbox == [(PHONE, TEXT)]
    [event] = logs
    assert (event["phone"], event["text"]) == ("+*******4567", TEXT)
    assert DIGITS not in repr(logs)


async def test_console_keeps_only_the_last_messages() -> None:
    sms = ConsoleSmsSender(keep=2)
    for code in ("1111", "2222", "3333"):
        await sms.send(PHONE, code)
    assert [text for _, text in sms.outbox] == ["2222", "3333"]


# Factory


def test_default_config_is_console() -> None:
    assert isinstance(sms_sender(SmsConfig()), ConsoleSmsSender)


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (SmsConfig(provider="smsru"), "smsru_api_id"),
        (SmsConfig(provider="smsc", smsc_login="rest"), "smsc_password"),
        (replace(CONFIGS["twilio"], twilio_auth_token=None), "twilio_auth_token"),
        (replace(CONFIGS["twilio"], twilio_from=None), "twilio_messaging_service_sid"),
        (replace(CONFIGS["twilio"], twilio_messaging_service_sid="MG1"), "exactly one"),
    ],
)
def test_missing_credentials_are_named(config: SmsConfig, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        sms_sender(config)
