"""Conventions every route keeps, read from the OpenAPI document: one time format, one list
shape. (Live answers are checked too: the test client refuses any answer whose moments are
out of format, see `check_time_format` in conftest.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI

from maxloyalty.kit import timestamps
from tests import error_catalogue
from tests.conftest import moments_out_of_format

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> Schema:
    return app.openapi()


def _resolve(spec: Schema, schema: Schema) -> Schema:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = spec["components"]["schemas"][name]
    return schema


def _nodes(spec: Schema, schema: Schema, seen: frozenset[str] = frozenset()) -> Iterator[Schema]:
    """Every schema node reachable from `schema`, following references once each."""
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return
        seen = seen | {schema["$ref"]}
    schema = _resolve(spec, schema)
    yield schema
    children: list[Schema] = [
        *schema.get("properties", {}).values(),
        *schema.get("anyOf", []),
        *schema.get("oneOf", []),
        *schema.get("allOf", []),
    ]
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            children.append(schema[key])
    for child in children:
        yield from _nodes(spec, child, seen)


def _answers(spec: Schema) -> Iterator[tuple[str, Schema]]:
    """(route, schema) of every JSON success answer in the document."""
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                body = response.get("content", {}).get("application/json", {}).get("schema")
                if status.startswith("2") and body:
                    yield f"{method.upper()} {path}", body


def test_every_moment_in_every_answer_is_rfc3339_utc_with_milliseconds(spec: Schema) -> None:
    moments = [
        (route, node)
        for route, body in _answers(spec)
        for node in _nodes(spec, body)
        if node.get("format") == "date-time"
    ]
    assert len(moments) > 20  # the walk reaches the models' fields
    wrong = [route for route, node in moments if node.get("pattern") != timestamps.PATTERN]
    assert not wrong, f"answers with a moment not typed as Timestamp: {sorted(set(wrong))}"


def test_every_list_is_a_cursor_page(spec: Schema) -> None:
    bare = [route for route, body in _answers(spec) if _resolve(spec, body).get("type") == "array"]
    assert not bare, f"lists answered as bare arrays: {bare}"
    pages = [
        (route, _resolve(spec, body))
        for route, body in _answers(spec)
        if "items" in _resolve(spec, body).get("properties", {})
    ]
    assert len(pages) > 10
    for route, page in pages:
        assert set(page["properties"]) == {"items", "next_cursor"}, route
        assert page["properties"]["items"]["type"] == "array", route
        assert route.startswith("GET "), route


def test_the_rendering_and_its_check() -> None:
    moment = datetime(2026, 12, 3, 12, 0, 5, 123456, tzinfo=timezone(timedelta(hours=3)))
    assert timestamps.rfc3339(moment) == "2026-12-03T09:00:05.123Z"
    assert timestamps.rfc3339(datetime(2026, 12, 3, 9, 0)) == "2026-12-03T09:00:00.000Z"
    assert timestamps.rfc3339_or_none(None) is None
    assert moments_out_of_format({"at": timestamps.rfc3339(datetime.now(UTC))}) == []
    assert moments_out_of_format({"a": [{"at": "2026-12-03T09:00:05+00:00"}]}) == [
        "$.a[0].at = '2026-12-03T09:00:05+00:00'"
    ]
    assert moments_out_of_format({"at": "2026-12-03 09:00:05.123Z", "day": "2026-12-03"}) == [
        "$.at = '2026-12-03 09:00:05.123Z'"
    ]
    # What a till sent is shown as it sent it.
    assert moments_out_of_format({"payload": {"eventTime": "2026-11-22 13:05:00.123"}}) == []


def test_readme_lists_every_error_code() -> None:
    codes = error_catalogue.collect()
    # The walk finds the codes raised in every way: class defaults, `code=` at the raise,
    # the handlers' own, and the HTTP statuses' names.
    assert {
        "insufficient_points": 409,
        "card_not_found": 404,
        "validation_error": 422,
        "database_busy": 503,
        "method_not_allowed": 405,
        "invalid_phone": 422,
    }.items() <= {code: min(entry.statuses) for code, entry in codes.items()}.items()
    assert len(codes) > 100
    readme = error_catalogue.readme_table(error_catalogue.README.read_text())
    assert readme == error_catalogue.render(codes), "run: python -m tests.error_catalogue"
