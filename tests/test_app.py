"""The HTTP surface every route shares: health, request ids, metrics, problem answers."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from maxloyalty.identity.principal import Role
from maxloyalty.kit.errors import PROBLEM_MEDIA_TYPE
from tests.conftest import TokenFactory


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


async def test_expired_token_is_401(client: httpx.AsyncClient, auth: TokenFactory) -> None:
    headers = auth(Role.RESTAURANT_ADMIN, uuid.uuid4(), ttl=timedelta(seconds=-5))
    assert_problem(await client.get("/api/restaurants", headers=headers), 401, "token_expired")


async def test_malformed_json_is_400(client: httpx.AsyncClient, auth: TokenFactory) -> None:
    response = await client.post(
        "/api/restaurants",
        content=b'{"name": "Broken", ',
        headers={"Content-Type": "application/json"} | auth(Role.RESTAURANT_ADMIN, uuid.uuid4()),
    )
    assert_problem(response, 400, "malformed_json")


async def test_invalid_fields_are_422_with_field_list(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    response = await client.post(
        "/api/restaurants",
        json={"name": "", "timezone": "Mars/Olympus", "unexpected": 1},
        headers=auth(Role.RESTAURANT_ADMIN, uuid.uuid4()),
    )
    body = assert_problem(response, 422, "validation_error")
    fields = {e["field"] for e in body["errors"]}  # type: ignore[attr-defined]
    assert fields == {"body.name", "body.timezone", "body.unexpected"}


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/nowhere"), 404, "not_found")
    assert_problem(await client.delete("/healthz"), 405, "method_not_allowed")


async def test_bad_path_parameter_is_422(client: httpx.AsyncClient, auth: TokenFactory) -> None:
    response = await client.get(
        "/api/restaurants/not-a-uuid", headers=auth(Role.MANAGER, uuid.uuid4())
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["field"] == "path.restaurant_id"  # type: ignore[index]
