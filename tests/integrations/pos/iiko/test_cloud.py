"""iikoCloud client against a local iikoCloud that answers as its OpenAPI document says."""

from __future__ import annotations

import asyncio
import json
import time
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
    TokenCache,
)
from tests.integrations.fake_http import Answer, Dribble, Request, json_answer, unused_url
from tests.integrations.iiko_fake import (
    LOGIN,
    ORGANIZATIONS,
    TERMINAL_GROUPS,
    UPDATE_WEBHOOKS,
    IikoCloudFake,
    TerminalGroupRow,
)

API_LOGIN = "a1b2c3d4-secret-api-login"
OTHER_LOGIN = "e5f6a7b8-other-api-login"
ORG_1 = "7bc05553-4b68-44e8-b7bc-37be63c6d9e9"
ORG_2 = "1f6e2a3c-2d2c-4a53-9d0e-0c5a3b7a0b11"
GROUP_1 = "c9b5d6e2-8f0a-4d6f-a1c1-3e2c0e9a7b01"
GROUP_2 = "c9b5d6e2-8f0a-4d6f-a1c1-3e2c0e9a7b02"
GROUP_3 = "c9b5d6e2-8f0a-4d6f-a1c1-3e2c0e9a7b03"
CORRELATION_ID = "48fb4cd3-2ef6-4479-bea1-7c92721b988c"
HOOK_URI = "https://loyalty.example.com/api/pos/iiko/webhook"


class ClockedCache:
    """kit.cache's interface over a dict, on a clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.items: dict[str, tuple[float, bytes]] = {}

    async def get(self, key: str) -> bytes | None:
        item = self.items.get(key)
        return item[1] if item is not None and item[0] > self.now else None

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self.items[key] = (self.now + ttl_seconds, value)

    async def delete(self, key: str) -> None:
        self.items.pop(key, None)

    async def close(self) -> None:
        self.items.clear()


def iiko_error(status: int, description: str, code: str | None = None) -> Answer:
    body = {"correlationId": CORRELATION_ID, "errorDescription": description, "error": code}
    return json_answer(body, status)


def body(request: Request) -> Any:
    return json.loads(request.body)


def bearers(server: IikoCloudFake) -> list[str | None]:
    return [request.headers.get("authorization") for request in server.requests]


@pytest.fixture
async def server() -> AsyncIterator[IikoCloudFake]:
    fake = IikoCloudFake(
        logins={API_LOGIN: [ORG_1, ORG_2], OTHER_LOGIN: [ORG_2]},
        organizations={ORG_1: "Пельменная на Тверской", ORG_2: None},
        terminal_groups=[
            TerminalGroupRow(GROUP_1, ORG_1, "Зал", "Тверская, 1"),
            TerminalGroupRow(GROUP_2, ORG_1, "Доставка"),
            TerminalGroupRow(GROUP_3, ORG_2, "Касса", "", asleep=True),
        ],
    )
    async with fake:
        yield fake
    assert fake.violations == []


@pytest.fixture
def cache() -> ClockedCache:
    return ClockedCache()


@pytest.fixture
def tokens(cache: ClockedCache) -> TokenCache:
    return TokenCache(cache, b"installation-secret")


@pytest.fixture
async def iiko(server: IikoCloudFake, tokens: TokenCache) -> AsyncIterator[IikoCloud]:
    cloud = IikoCloud(server.url, API_LOGIN, tokens)
    yield cloud
    await cloud.aclose()


async def failure(iiko: IikoCloud) -> IikoError:
    with pytest.raises(IikoError) as caught:
        await iiko.organizations()
    assert API_LOGIN not in str(caught.value)
    return caught.value


# The token


async def test_logs_in_once_and_reuses_the_token(server: IikoCloudFake, iiko: IikoCloud) -> None:
    await iiko.organizations()
    await iiko.organizations()

    assert server.paths() == [LOGIN, ORGANIZATIONS, ORGANIZATIONS]
    login = server.requests[0]
    assert login.method == "POST"
    assert body(login) == {"apiLogin": API_LOGIN}
    assert login.headers["content-type"] == "application/json"
    token = bearers(server)[1]
    assert token is not None
    assert bearers(server) == [None, token, token]
    assert all(API_LOGIN not in request.path + str(request.query) for request in server.requests)
    assert all(API_LOGIN.encode() not in request.body for request in server.requests[1:])


async def test_clients_share_the_token_through_the_cache(
    server: IikoCloudFake, tokens: TokenCache, cache: ClockedCache
) -> None:
    """A sync makes a client per call: the next one (here or in another process) finds the
    token in the cache; another apiLogin has a token of its own."""
    for login in [API_LOGIN, API_LOGIN, OTHER_LOGIN, OTHER_LOGIN]:
        cloud = IikoCloud(server.url, login, tokens)
        await cloud.organizations()
        await cloud.aclose()

    assert server.paths().count(LOGIN) == 2
    assert [body(r)["apiLogin"] for r in server.calls(LOGIN)] == [API_LOGIN, OTHER_LOGIN]
    assert len(cache.items) == 2
    assert not any(API_LOGIN in key or OTHER_LOGIN in key for key in cache.items)
    # The key is keyed by the installation's secret: the login cannot be guessed from it.
    assert TokenCache(cache, b"another-secret").key(server.url, API_LOGIN) not in cache.items


async def test_concurrent_calls_log_in_once(server: IikoCloudFake, iiko: IikoCloud) -> None:
    results = await asyncio.gather(*(iiko.organizations() for _ in range(3)))

    assert len(results) == 3
    assert server.paths().count(LOGIN) == 1
    assert len(set(bearers(server)[1:])) == 1


async def test_token_is_renewed_after_55_minutes_before_iiko_drops_it(
    server: IikoCloudFake, iiko: IikoCloud, cache: ClockedCache
) -> None:
    assert TOKEN_LIFETIME == 55 * 60

    await iiko.organizations()
    for seconds in [55 * 60 - 1, 1]:
        cache.now += seconds
        server.advance(seconds)
        await iiko.organizations()

    # Renewed at 55 minutes, while iiko (an hour) still took the old one: never a 401.
    assert server.paths() == [LOGIN, ORGANIZATIONS, ORGANIZATIONS, LOGIN, ORGANIZATIONS]
    first, renewed = bearers(server)[1], bearers(server)[4]
    assert bearers(server) == [None, first, first, None, renewed]
    assert first != renewed


async def test_a_token_iiko_dropped_is_replaced_once(
    server: IikoCloudFake, iiko: IikoCloud, cache: ClockedCache
) -> None:
    await iiko.organizations()
    server.expire_tokens()  # iiko answers 401 to it by itself from now on

    organizations = await iiko.organizations()

    assert [org.id for org in organizations] == [ORG_1, ORG_2]
    assert server.paths() == [LOGIN, ORGANIZATIONS, ORGANIZATIONS, LOGIN, ORGANIZATIONS]
    assert bearers(server)[2] == bearers(server)[1] != bearers(server)[4]
    assert body(server.requests[2]) == body(server.requests[4])
    ((_, cached),) = cache.items.values()
    assert f"Bearer {cached.decode()}" == bearers(server)[4]  # the fresh token is the one kept


async def test_401_after_a_fresh_login_is_not_retried_again(
    server: IikoCloudFake, iiko: IikoCloud
) -> None:
    server.inject(ORGANIZATIONS, iiko_error(401, "Unauthorized"), iiko_error(401, "Unauthorized"))

    error = await failure(iiko)

    assert (error.code, error.status, error.retryable) == ("auth_failed", 401, False)
    assert server.paths() == [LOGIN, ORGANIZATIONS, LOGIN, ORGANIZATIONS]


async def test_bad_api_login_is_auth_failed_and_not_retryable(
    server: IikoCloudFake, tokens: TokenCache, cache: ClockedCache
) -> None:
    iiko = IikoCloud(server.url, "wrong-" + API_LOGIN, tokens)
    try:
        error = await failure(iiko)
    finally:
        await iiko.aclose()

    assert (error.code, error.status, error.retryable) == ("auth_failed", 401, False)
    assert "is not authorized" in error.message
    assert server.paths() == [LOGIN]
    assert cache.items == {}


async def test_login_answer_without_a_token_is_a_bad_response(
    server: IikoCloudFake, iiko: IikoCloud
) -> None:
    server.inject(LOGIN, json_answer({"correlationId": CORRELATION_ID}), conforms=False)

    error = await failure(iiko)

    assert error.code == "bad_response"
    assert server.paths() == [LOGIN]


# Failures


async def test_no_answer_in_time_is_a_retryable_timeout(
    server: IikoCloudFake, tokens: TokenCache
) -> None:
    server.inject(ORGANIZATIONS, "hang")
    iiko = IikoCloud(server.url, API_LOGIN, tokens, timeout=0.3)
    try:
        error = await failure(iiko)
    finally:
        await iiko.aclose()

    assert (error.code, error.status, error.retryable) == ("timeout", None, True)
    assert server.paths() == [LOGIN, ORGANIZATIONS]
    assert server.requests[1].headers["timeout"] == "1"  # whole seconds, at least one


async def test_a_login_that_times_out_keeps_nothing(
    server: IikoCloudFake, tokens: TokenCache, cache: ClockedCache
) -> None:
    server.inject(LOGIN, "hang")
    iiko = IikoCloud(server.url, API_LOGIN, tokens, timeout=0.3)
    try:
        error = await failure(iiko)
        assert (error.code, error.retryable) == ("timeout", True)
        assert cache.items == {}
        await iiko.organizations()  # iiko is back: the next call logs in
    finally:
        await iiko.aclose()

    assert server.paths() == [LOGIN, LOGIN, ORGANIZATIONS]


async def test_an_answer_dribbled_out_is_cut_off_at_our_deadline(
    server: IikoCloudFake, tokens: TokenCache
) -> None:
    """httpx's timeout is per read; each trickle of bytes comes in time, the whole does not."""
    answer = json_answer({"correlationId": CORRELATION_ID, "organizations": []})
    server.inject(ORGANIZATIONS, Dribble(answer, pause=0.05, chunk=4))
    iiko = IikoCloud(server.url, API_LOGIN, tokens, timeout=0.5)
    try:
        started = time.monotonic()
        error = await failure(iiko)
        elapsed = time.monotonic() - started
    finally:
        await iiko.aclose()

    assert (error.code, error.retryable) == ("timeout", True)
    assert elapsed < 1.0  # the whole answer takes over two seconds


@pytest.mark.parametrize(("ours", "header"), [(15.0, "13"), (7.5, "5"), (2.5, "1")])
async def test_iiko_is_told_to_give_up_before_we_do(
    server: IikoCloudFake, tokens: TokenCache, ours: float, header: str
) -> None:
    """iiko's own 408 (with its errorDescription) must reach us before our timeout fires."""
    iiko = IikoCloud(server.url, API_LOGIN, tokens, timeout=ours)
    try:
        await iiko.organizations()
    finally:
        await iiko.aclose()

    assert [request.headers["timeout"] for request in server.requests] == [header, header]


async def test_nothing_listening_is_a_retryable_network_error(tokens: TokenCache) -> None:
    iiko = IikoCloud(unused_url(), API_LOGIN, tokens)
    try:
        error = await failure(iiko)
    finally:
        await iiko.aclose()

    assert (error.code, error.retryable) == ("network", True)


async def test_dropped_connection_is_a_retryable_network_error(
    server: IikoCloudFake, iiko: IikoCloud
) -> None:
    server.inject(ORGANIZATIONS, "drop")

    error = await failure(iiko)

    assert (error.code, error.retryable) == ("network", True)


async def test_400_carries_iikos_error_description(server: IikoCloudFake, iiko: IikoCloud) -> None:
    server.inject(
        ORGANIZATIONS, iiko_error(400, "Organization not found", "ORGANIZATION_NOT_FOUND")
    )

    error = await failure(iiko)

    assert (error.code, error.status, error.retryable) == ("rejected", 400, False)
    assert "Organization not found" in error.message
    assert error.correlation_id == CORRELATION_ID


@pytest.mark.parametrize(
    ("status", "retryable"), [(408, True), (429, True), (500, True), (503, True), (403, False)]
)
async def test_error_statuses_say_whether_to_retry(
    server: IikoCloudFake, iiko: IikoCloud, status: int, retryable: bool
) -> None:
    server.inject(ORGANIZATIONS, iiko_error(status, "Something went wrong"))

    error = await failure(iiko)

    assert (error.code, error.status, error.retryable) == ("rejected", status, retryable)
    assert "Something went wrong" in error.message


async def test_error_page_that_is_not_json_still_has_its_status(
    server: IikoCloudFake, iiko: IikoCloud
) -> None:
    server.inject(ORGANIZATIONS, Answer(502, b"<html>Bad Gateway</html>", "text/html"))

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
    server: IikoCloudFake, iiko: IikoCloud, answer: Answer
) -> None:
    server.inject(ORGANIZATIONS, answer, conforms=False)

    error = await failure(iiko)

    assert (error.code, error.retryable) == ("bad_response", True)


# The calls


async def test_organizations_request_and_answer(server: IikoCloudFake, iiko: IikoCloud) -> None:
    organizations = await iiko.organizations()

    assert organizations == [
        Organization(id=ORG_1, name="Пельменная на Тверской"),
        Organization(id=ORG_2, name=""),
    ]
    request = server.calls(ORGANIZATIONS)[0]
    assert request.method == "POST"
    assert body(request) == {
        "organizationIds": None,
        "returnAdditionalInfo": False,
        "includeDisabled": False,
    }


async def test_terminal_groups_are_flattened_with_the_sleeping_ones_flagged(
    server: IikoCloudFake, iiko: IikoCloud
) -> None:
    groups = await iiko.terminal_groups([ORG_1, ORG_2])

    assert groups == [
        TerminalGroup(GROUP_1, ORG_1, "Зал", "Тверская, 1", asleep=False),
        TerminalGroup(GROUP_2, ORG_1, "Доставка", "", asleep=False),
        TerminalGroup(GROUP_3, ORG_2, "Касса", "", asleep=True),
    ]
    (request,) = server.calls(TERMINAL_GROUPS)
    assert body(request) == {"organizationIds": [ORG_1, ORG_2]}


async def test_terminal_groups_of_no_organization_asks_nothing(
    server: IikoCloudFake, iiko: IikoCloud
) -> None:
    assert await iiko.terminal_groups([]) == []
    assert server.requests == []


async def test_register_webhook_asks_for_closed_orders(
    server: IikoCloudFake, iiko: IikoCloud
) -> None:
    correlation_id = await iiko.register_webhook(ORG_1, HOOK_URI, "webhook-secret")

    assert server.webhook_settings == {
        (API_LOGIN, ORG_1): {
            "organizationId": ORG_1,
            "webHooksUri": HOOK_URI,
            "authToken": "webhook-secret",
            "webHooksFilter": {
                "tableOrderFilter": {"orderStatuses": ["Closed"]},
                "deliveryOrderFilter": {
                    "orderStatuses": ["Closed"],
                    "returnedExternalDataKeys": ["maxloyalty.card"],
                },
            },
        }
    }
    assert len(correlation_id) == 36


async def test_a_401_on_update_settings_logs_in_again_and_repeats_it(
    server: IikoCloudFake, iiko: IikoCloud
) -> None:
    await iiko.organizations()
    server.inject(UPDATE_WEBHOOKS, iiko_error(401, "Token is expired or invalid"))

    await iiko.register_webhook(ORG_1, HOOK_URI, "webhook-secret")

    assert server.paths() == [LOGIN, ORGANIZATIONS, UPDATE_WEBHOOKS, LOGIN, UPDATE_WEBHOOKS]
    assert (API_LOGIN, ORG_1) in server.webhook_settings


async def test_update_settings_for_an_organization_the_login_does_not_see(
    server: IikoCloudFake, tokens: TokenCache
) -> None:
    iiko = IikoCloud(server.url, OTHER_LOGIN, tokens)
    try:
        with pytest.raises(IikoError) as caught:
            await iiko.register_webhook(ORG_1, HOOK_URI, "webhook-secret")
    finally:
        await iiko.aclose()

    assert (caught.value.code, caught.value.status, caught.value.retryable) == (
        "rejected",
        400,
        False,
    )
    assert server.webhook_settings == {}


# The HTTP client


async def test_an_injected_client_is_used_and_left_open(
    server: IikoCloudFake, tokens: TokenCache
) -> None:
    async with httpx.AsyncClient(headers={"User-Agent": "maxloyalty-test"}) as client:
        iiko = IikoCloud(server.url + "/", API_LOGIN, tokens, client=client)
        await iiko.organizations()
        await iiko.aclose()

        assert not client.is_closed
    assert server.paths() == [LOGIN, ORGANIZATIONS]
    assert {request.headers["user-agent"] for request in server.requests} == {"maxloyalty-test"}


async def test_aclose_closes_its_own_client(server: IikoCloudFake, tokens: TokenCache) -> None:
    iiko = IikoCloud(server.url, API_LOGIN, tokens)
    await iiko.aclose()

    assert iiko._client.is_closed
