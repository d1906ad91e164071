"""The HTTP surface every route shares: health, request ids, metrics, problem answers."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from maxloyalty.identity.principal import Role
from maxloyalty.kit.errors import PROBLEM_MEDIA_TYPE, install_error_handlers
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_tenant


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_openapi_document_and_docs_page(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/api/restaurants" in spec["paths"]
    post = spec["paths"]["/api/restaurants"]["post"]
    assert {"401", "403", "409", "422"} <= set(post["responses"])
    docs = await client.get("/api/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "till-42.retry-1"})
    assert echoed.headers["x-request-id"] == "till-42.retry-1"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/restaurants/3f0e6a3c-0000-7000-8000-000000000000")
    text = (await client.get("/metrics")).text
    assert 'route="/api/restaurants/{restaurant_id}"' in text
    assert "maxloyalty_http_request_seconds_bucket" in text


async def test_no_credentials_is_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/restaurants", json={"name": "X", "timezone": "UTC"})
    assert_problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Bearer not-a-jwt", "invalid_token"),
        ("Basic dXNlcjpwYXNz", "not_authenticated"),
    ],
)
async def test_bad_credentials_are_401(client: httpx.AsyncClient, header: str, code: str) -> None:
    response = await client.get("/api/restaurants", headers={"Authorization": header})
    assert_problem(response, 401, code)


async def test_expired_token_is_401(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    headers = await auth(Role.RESTAURANT_ADMIN, tenant.id, ttl=timedelta(seconds=-5))
    assert_problem(await client.get("/api/restaurants", headers=headers), 401, "token_expired")


async def test_malformed_json_is_400(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    admin = await auth(Role.RESTAURANT_ADMIN, (await make_tenant(runtime)).id)
    response = await client.post(
        "/api/restaurants",
        content=b'{"name": "Broken", ',
        headers={"Content-Type": "application/json"} | admin,
    )
    assert_problem(response, 400, "malformed_json")


async def test_invalid_fields_are_422_with_field_list(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    admin = await auth(Role.RESTAURANT_ADMIN, (await make_tenant(runtime)).id)
    response = await client.post(
        "/api/restaurants",
        json={"name": "", "timezone": "Mars/Olympus", "unexpected": 1},
        headers=admin,
    )
    body = assert_problem(response, 422, "validation_error")
    fields = {e["field"] for e in body["errors"]}  # type: ignore[attr-defined]
    assert fields == {"body.name", "body.timezone", "body.unexpected"}


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/nowhere"), 404, "not_found")
    assert_problem(await client.delete("/healthz"), 405, "method_not_allowed")


async def test_bad_path_parameter_is_422(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    manager = await auth(Role.MANAGER, (await make_tenant(runtime)).id)
    response = await client.get("/api/restaurants/not-a-uuid", headers=manager)
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["field"] == "path.restaurant_id"  # type: ignore[index]


class _Refusal(Exception):
    """What asyncpg raises, as far as the handler looks: its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "status", "code"),
    [
        ("22021", 422, "invalid_value"),  # a NUL or an invalid byte in text
        ("40P01", 503, "database_busy"),  # a deadlock: void, safe to send again
        ("40001", 503, "database_busy"),  # a serialization failure
        ("53300", 503, "database_busy"),  # too many connections (asyncpg's TooManyConnections)
        ("53200", 503, "database_busy"),  # out of memory
        ("08006", 503, "database_busy"),  # the connection failed
        ("08001", 503, "database_busy"),  # the client could not connect
        ("57P01", 503, "database_busy"),  # the server is shutting down (admin)
        ("57P02", 503, "database_busy"),  # ... after a crash
        ("57P03", 503, "database_busy"),  # cannot connect now (asyncpg's CannotConnectNow)
        ("57014", 500, "internal_error"),  # a statement cancelled, say by its timeout: not load
        ("XX000", 500, "internal_error"),
    ],
)
async def test_database_refusals_map_by_sqlstate(sqlstate: str, status: int, code: str) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/refused")
    async def refused() -> None:
        raise DBAPIError("SELECT 1", None, _Refusal(sqlstate))

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get("/refused")
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    if status == 503:
        assert answer.headers["retry-after"] == "1"


async def test_other_oserrors_are_not_database_busy() -> None:
    """Only a failed connection to the database is `database_busy`: an outbound call
    refused (a webhook target down, say) is still an unexpected error."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/outbound")
    async def outbound() -> None:
        raise ConnectionRefusedError(111, "Connect call failed ('192.0.2.1', 443)")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get("/outbound")
    assert (answer.status_code, answer.json()["code"]) == (500, "internal_error")


async def test_nul_characters_are_refused_not_failed(
    client: httpx.AsyncClient, auth: TokenFactory, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    answer = await client.post(
        "/api/webhooks/endpoints",
        json={"url": "https://hooks.example.com/x", "description": "a\u0000b"},
        headers=admin,
    )
    assert_problem(answer, 422, "invalid_value")


@pytest.mark.parametrize("page", ["/api/docs", "/api/redoc"])
async def test_api_docs_need_nothing_from_the_internet(
    client: httpx.AsyncClient, page: str
) -> None:
    html = await client.get(page)
    assert html.status_code == 200
    assert "//" not in re.sub(r"<!--.*?-->", "", html.text.replace("http://testserver", ""))
    assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    assert assets, html.text
    for asset in assets:
        assert asset.startswith("/api/docs/static/"), asset
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000
    assert "/openapi.json" in html.text
