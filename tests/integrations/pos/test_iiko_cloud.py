"""iikoCloud client against a local HTTP server answering in iiko's wire format (OpenAPI doc)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from maxloyalty.integrations.pos.iiko.cloud import (
    TOKEN_LIFETIME,
    IikoCloud,
    IikoError,
    Organization,
    TerminalGroup,
)
from tests.integrations.fake_http import Answer, FakeServer, Request, json_answer, unused_url

API_LOGIN = "a1b2c3d4-secret-api-login"
ORG_1 = "7bc05553-4b68-44e8-b7bc-37be63c6d9e9"
ORG_2 = "1f6e2a3c-2d2c-4a53-9d0e-0c5a3b7a0b11"
GROUP_1 = "c9b5d6e2-8f0a-4d6f-a1c1-3e2c0e9a7b01"
GROUP_2 = "c9b5d6e2-8f0a-4d6f-a1c1-3e2c0e9a7b02"
GROUP_3 = "c9b5d6e2-8f0a-4d6f-a1c1-3e2c0e9a7b03"
CORRELATION_ID = "48fb4cd3-2ef6-4479-bea1-7c92721b988c"

LOGIN = "/api/1/access_token"
ORGANIZATIONS = "/api/1/organizations"
TERMINAL_GROUPS = "/api/1/terminal_groups"
UPDATE_WEBHOOKS = "/api/1/webhooks/update_settings"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token_answer(token: str) -> Answer:
    return json_answer({"correlationId": CORRELATION_ID, "token": token})


def error_answer(status: int, description: str, error: str | None = None) -> Answer:
    body = {"correlationId": CORRELATION_ID, "errorDescription": description, "error": error}
    return json_answer(body, status)


ORGANIZATIONS_ANSWER = json_answer(
    {
        "correlationId": CORRELATION_ID,
        "organizations": [
            {"responseType": "Simple", "id": ORG_1, "name": "Пельменная на Тверской"},
            {"responseType": "Simple", "id": ORG_2, "name": None, "code": "7"},
        ],
    }
)


def body(request: Request) -> Any:
    return json.loads(request.body)


def paths(server: FakeServer) -> list[str]:
    return [request.path for request in server.requests]


def bearers(server: FakeServer) -> list[str | None]:
    return [request.headers.get("authorization") for request in server.requests]


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    async with FakeServer() as fake:
        yield fake


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def iiko(server: FakeServer, clock: FakeClock) -> AsyncIterator[IikoCloud]:
    cloud = IikoCloud(server.url, API_LOGIN, clock=clock)
    yield cloud
    await cloud.aclose()


async def failure(iiko: IikoCloud) -> IikoError:
    with pytest.raises(IikoError) as caught:
        await iiko.organizations()
    assert API_LOGIN not in str(caught.value)
    return caught.value


# The token


async def test_logs_in_once_and_reuses_the_token(server: FakeServer, iiko: IikoCloud) -> None:
    server.script = [token_answer("token-1"), ORGANIZATIONS_ANSWER, ORGANIZATIONS_ANSWER]

    await iiko.organizations()
    await iiko.organizations()

    assert paths(server) == [LOGIN, ORGANIZATIONS, ORGANIZATIONS]
    login = server.requests[0]
    assert login.method == "POST"
    assert body(login) == {"apiLogin": API_LOGIN}
    assert login.headers["content-type"] == "application/json"
    assert bearers(server) == [None, "Bearer token-1", "Bearer token-1"]
    assert all(request.headers["timeout"] == "15" for request in server.requests)
    assert all(API_LOGIN not in request.path + str(request.query) for request in server.requests)
    assert all(API_LOGIN.encode() not in request.body for request in server.requests[1:])


async def test_concurrent_calls_log_in_once(server: FakeServer, iiko: IikoCloud) -> None:
    server.script = [token_answer("token-1")]
    server.answer = ORGANIZATIONS_ANSWER

    results = await asyncio.gather(*(iiko.organizations() for _ in range(3)))

    assert len(results) == 3
    assert paths(server).count(LOGIN) == 1
    assert bearers(server)[1:] == ["Bearer token-1"] * 3


async def test_token_is_renewed_after_55_minutes(
    server: FakeServer, iiko: IikoCloud, clock: FakeClock
) -> None:
    server.script = [token_answer("token-1"), ORGANIZATIONS_ANSWER, ORGANIZATIONS_ANSWER]
    server.script += [token_answer("token-2"), ORGANIZATIONS_ANSWER]
    assert TOKEN_LIFETIME == 55 * 60

    await iiko.organizations()
    clock.now += 55 * 60 - 1
    await iiko.organizations()
    clock.now += 1
    await iiko.organizations()

    assert paths(server) == [LOGIN, ORGANIZATIONS, ORGANIZATIONS, LOGIN, ORGANIZATIONS]
    assert bearers(server) == [None, "Bearer token-1", "Bearer token-1", None, "Bearer token-2"]


async def test_401_on_a_call_logs_in_again_and_repeats_it(
    server: FakeServer, iiko: IikoCloud
) -> None:
    server.script = [
        token_answer("token-1"),
        error_answer(401, "Token is expired or invalid"),
        token_answer("token-2"),
        ORGANIZATIONS_ANSWER,
    ]

    organizations = await iiko.organizations()

    assert [org.id for org in organizations] == [ORG_1, ORG_2]
    assert paths(server) == [LOGIN, ORGANIZATIONS, LOGIN, ORGANIZATIONS]
    assert bearers(server) == [None, "Bearer token-1", None, "Bearer token-2"]
    assert body(server.requests[1]) == body(server.requests[3])


async def test_401_after_a_fresh_login_is_not_retried_again(
    server: FakeServer, iiko: IikoCloud
) -> None:
    server.script = [token_answer("token-1"), error_answer(401, "Unauthorized")]
    server.script += [token_answer("token-2"), error_answer(401, "Unauthorized")]

    error = await failure(iiko)

    assert (error.code, error.status, error.retryable) == ("auth_failed", 401, False)
    assert paths(server) == [LOGIN, ORGANIZATIONS, LOGIN, ORGANIZATIONS]


async def test_bad_api_login_is_auth_failed_and_not_retryable(
    server: FakeServer, iiko: IikoCloud
) -> None:
    server.answer = error_answer(401, f"Login {API_LOGIN} is not authorized")

    error = await failure(iiko)

    assert (error.code, error.status, error.retryable) == ("auth_failed", 401, False)
    assert "is not authorized" in error.message
    assert paths(server) == [LOGIN]


async def test_login_answer_without_a_token_is_a_bad_response(
    server: FakeServer, iiko: IikoCloud
) -> None:
    server.answer = json_answer({"correlationId": CORRELATION_ID})

    error = await failure(iiko)

    assert error.code == "bad_response"
    assert paths(server) == [LOGIN]


# Failures


async def test_no_answer_in_time_is_a_retryable_timeout(server: FakeServer) -> None:
    server.script = [token_answer("token-1"), "hang"]
    iiko = IikoCloud(server.url, API_LOGIN, timeout=0.3)
    try:
        error = await failure(iiko)
    finally:
        await iiko.aclose()

    assert (error.code, error.status, error.retryable) == ("timeout", None, True)
    assert paths(server) == [LOGIN, ORGANIZATIONS]
    assert server.requests[1].headers["timeout"] == "1"  # whole seconds, at least one


async def test_timeout_header_is_whole_seconds_within_ours(server: FakeServer) -> None:
    server.script = [token_answer("token-1"), ORGANIZATIONS_ANSWER]
    iiko = IikoCloud(server.url, API_LOGIN, timeout=7.5)
    try:
        await iiko.organizations()
    finally:
        await iiko.aclose()

    assert [request.headers["timeout"] for request in server.requests] == ["7", "7"]


async def test_nothing_listening_is_a_retryable_network_error() -> None:
    iiko = IikoCloud(unused_url(), API_LOGIN)
    try:
        error = await failure(iiko)
    finally:
        await iiko.aclose()

    assert (error.code, error.retryable) == ("network", True)


async def test_dropped_connection_is_a_retryable_network_error(
    server: FakeServer, iiko: IikoCloud
) -> None:
    server.script = [token_answer("token-1"), "drop"]

    error = await failure(iiko)

    assert (error.code, error.retryable) == ("network", True)


async def test_400_carries_iikos_error_description(server: FakeServer, iiko: IikoCloud) -> None:
    server.script = [token_answer("token-1")]
    server.answer = error_answer(400, "Organization not found", "ORGANIZATION_NOT_FOUND")

    error = await failure(iiko)

    assert (error.code, error.status, error.retryable) == ("rejected", 400, False)
    assert "Organization not found" in error.message
    assert error.correlation_id == CORRELATION_ID


@pytest.mark.parametrize(
    ("status", "retryable"), [(408, True), (429, True), (500, True), (503, True), (403, False)]
)
async def test_error_statuses_say_whether_to_retry(
    server: FakeServer, iiko: IikoCloud, status: int, retryable: bool
) -> None:
    server.script = [token_answer("token-1")]
    server.answer = error_answer(status, "Something went wrong")

    error = await failure(iiko)

    assert (error.code, error.status, error.retryable) == ("rejected", status, retryable)
    assert "Something went wrong" in error.message


async def test_error_page_that_is_not_json_still_has_its_status(
    server: FakeServer, iiko: IikoCloud
) -> None:
    server.script = [token_answer("token-1")]
    server.answer = Answer(502, b"<html>Bad Gateway</html>", "text/html")

    error = await failure(iiko)

    assert (error.code, error.status, error.retryable) == ("rejected", 502, True)


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, b"<html>maintenance</html>", "text/html"),
        json_answer(["not", "an", "object"]),
        json_answer({"correlationId": CORRELATION_ID}),
        json_answer({"correlationId": CORRELATION_ID, "organizations": [{"name": "no id"}]}),
    ],
)
async def test_unexpected_success_body_is_a_bad_response(
    server: FakeServer, iiko: IikoCloud, answer: Answer
) -> None:
    server.script = [token_answer("token-1")]
    server.answer = answer

    error = await failure(iiko)

    assert (error.code, error.retryable) == ("bad_response", True)


# The calls


async def test_organizations_request_and_answer(server: FakeServer, iiko: IikoCloud) -> None:
    server.script = [token_answer("token-1"), ORGANIZATIONS_ANSWER]

    organizations = await iiko.organizations()

    assert organizations == [
        Organization(id=ORG_1, name="Пельменная на Тверской"),
        Organization(id=ORG_2, name=""),
    ]
    request = server.requests[1]
    assert (request.method, request.path) == ("POST", ORGANIZATIONS)
    assert body(request) == {
        "organizationIds": None,
        "returnAdditionalInfo": False,
        "includeDisabled": False,
    }


async def test_terminal_groups_are_flattened_across_organizations(
    server: FakeServer, iiko: IikoCloud
) -> None:
    def group(id_: str, org: str, name: str, address: str | None) -> dict[str, Any]:
        return {
            "id": id_,
            "organizationId": org,
            "name": name,
            "address": address,
            "timeZone": "Russian Standard Time",
            "externalData": None,
        }

    server.script = [
        token_answer("token-1"),
        json_answer(
            {
                "correlationId": CORRELATION_ID,
                "terminalGroups": [
                    {
                        "organizationId": ORG_1,
                        "items": [
                            group(GROUP_1, ORG_1, "Зал", "Тверская, 1"),
                            group(GROUP_2, ORG_1, "Доставка", None),
                        ],
                    },
                    {"organizationId": ORG_2, "items": [group(GROUP_3, ORG_2, "Касса", "")]},
                ],
                "terminalGroupsInSleep": [],
            }
        ),
    ]

    groups = await iiko.terminal_groups([ORG_1, ORG_2])

    assert groups == [
        TerminalGroup(id=GROUP_1, organization_id=ORG_1, name="Зал", address="Тверская, 1"),
        TerminalGroup(id=GROUP_2, organization_id=ORG_1, name="Доставка", address=""),
        TerminalGroup(id=GROUP_3, organization_id=ORG_2, name="Касса", address=""),
    ]
    request = server.requests[1]
    assert (request.path, request.headers["authorization"]) == (TERMINAL_GROUPS, "Bearer token-1")
    assert body(request) == {"organizationIds": [ORG_1, ORG_2]}


async def test_terminal_groups_of_no_organization_asks_nothing(
    server: FakeServer, iiko: IikoCloud
) -> None:
    assert await iiko.terminal_groups([]) == []
    assert server.requests == []


async def test_register_webhook_asks_for_closed_orders(server: FakeServer, iiko: IikoCloud) -> None:
    server.script = [token_answer("token-1"), json_answer({"correlationId": CORRELATION_ID})]

    correlation_id = await iiko.register_webhook(
        ORG_1, "https://loyalty.example.com/pos/iiko/webhook", "webhook-secret"
    )

    assert correlation_id == CORRELATION_ID
    request = server.requests[1]
    assert (request.path, request.headers["authorization"]) == (UPDATE_WEBHOOKS, "Bearer token-1")
    assert body(request) == {
        "organizationId": ORG_1,
        "webHooksUri": "https://loyalty.example.com/pos/iiko/webhook",
        "authToken": "webhook-secret",
        "webHooksFilter": {
            "tableOrderFilter": {"orderStatuses": ["Closed"]},
            "deliveryOrderFilter": {
                "orderStatuses": ["Closed"],
                "returnedExternalDataKeys": ["maxloyalty.card"],
            },
        },
    }


# The HTTP client


async def test_an_injected_client_is_used_and_left_open(server: FakeServer) -> None:
    server.script = [token_answer("token-1"), ORGANIZATIONS_ANSWER]
    async with httpx.AsyncClient(headers={"User-Agent": "maxloyalty-test"}) as client:
        iiko = IikoCloud(server.url + "/", API_LOGIN, client=client)
        await iiko.organizations()
        await iiko.aclose()

        assert not client.is_closed
    assert paths(server) == [LOGIN, ORGANIZATIONS]
    assert {request.headers["user-agent"] for request in server.requests} == {"maxloyalty-test"}


async def test_aclose_closes_its_own_client(server: FakeServer) -> None:
    iiko = IikoCloud(server.url, API_LOGIN)
    await iiko.aclose()

    assert iiko._client.is_closed
