"""Conventions every route keeps, read from the OpenAPI document: one time format, one list
shape. (Live answers are checked too: the test client refuses any answer whose moments are
out of format, see `check_time_format` in conftest.)"""

from __future__ import annotations

import re
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


# Every code the API answers today, with its statuses. Clients branch on these: a code
# that disappears, moves to another status or appears unnoticed fails here.
KNOWN_CODES = {
    "account_blocked": [403],
    "account_locked": [429],
    "api_key_not_found": [404],
    "api_key_revoked": [401],
    "api_key_suspended": [401],
    "bad_request": [400],
    "birth_date_locked": [409],
    "card_blocked": [409],
    "card_deleted": [409],
    "card_not_found": [404],
    "card_required": [422],
    "check_already_posted": [409],
    "check_not_found": [404],
    "child_not_found": [404],
    "code_space_exhausted": [503],
    "conflict": [409],
    "consent_required": [422],
    "constraint_violation": [409],
    "contact_required": [422],
    "credentials_required": [422],
    "csrf_failed": [403],
    "database_busy": [503],
    "database_unavailable": [503],
    "event_not_found": [404],
    "expiry_in_past": [422],
    "forbidden": [403],
    "form_expected": [415],
    "form_invalid": [422],
    "form_too_large": [413],
    "guest_blocked": [403],
    "guest_not_found": [404],
    "guest_required": [422],
    "guest_transfers_disabled": [403],
    "hold_committed": [409],
    "hold_not_found": [404],
    "idempotency_key_required": [400],
    "idempotency_key_reused": [422],
    "insufficient_points": [409],
    "internal_error": [500],
    "invalid_api_key": [401],
    "invalid_credentials": [401, 403],
    "invalid_cursor": [400],
    "invalid_email": [422],
    "invalid_events": [400],
    "invalid_init_data": [401],
    "invalid_levels": [422],
    "invalid_phone": [422],
    "invalid_qr": [422],
    "invalid_refresh_token": [401],
    "invalid_request": [400],
    "invalid_signature": [401],
    "invalid_staff_role": [422],
    "invalid_token": [401],
    "invalid_value": [422],
    "invalid_webhook_token": [401],
    "invalid_xml": [400],
    "logo_invalid": [422],
    "logo_not_found": [404],
    "logo_type_unsupported": [415],
    "malformed_json": [400],
    "method_not_allowed": [405],
    "migrations_pending": [503],
    "no_active_role": [403],
    "not_acceptable": [406],
    "not_authenticated": [401],
    "not_found": [404],
    "not_pending": [409],
    "operation_in_flight": [409],
    "order_already_posted": [409],
    "organization_required": [422],
    "otp_cooldown": [429],
    "otp_invalid": [400],
    "payload_too_large": [413],
    "permission_not_found": [404],
    "points_not_used": [422],
    "pos_integration_inactive": [403],
    "pos_integration_not_found": [404],
    "pos_integration_required": [403],
    "pos_name_taken": [409],
    "pos_system_mismatch": [403, 422],
    "pos_unavailable": [502],
    "pos_url_refused": [422],
    "profile_not_found": [404],
    "program_exists": [409],
    "program_not_found": [404],
    "qr_expired": [422],
    "rate_limited": [429],
    "redemption_limit_exceeded": [422],
    "refresh_token_reused": [401],
    "refund_exceeds_check": [422],
    "restaurant_forbidden": [403],
    "restaurant_limit_reached": [409],
    "restaurant_name_taken": [409],
    "restaurant_not_found": [404],
    "restaurant_required": [422],
    "restaurants_required": [422],
    "retry_later": [503],
    "reward_not_found": [404],
    "reward_out_of_stock": [409],
    "reward_unavailable": [409],
    "role_forbidden": [403],
    "rotating_code_required": [422],
    "same_card": [422],
    "sms_rejected": [422],
    "sms_unavailable": [503],
    "self_management": [403],
    "session_revoked": [401],
    "staff_exists": [409],
    "staff_not_found": [404],
    "telegram_bot_not_found": [404],
    "telegram_bot_taken": [409],
    "telegram_not_configured": [503],
    "telegram_secret_invalid": [403],
    "telegram_token_invalid": [422],
    "telegram_unavailable": [503],
    "tenant_choice_required": [409],
    "tenant_not_found": [404],
    "tenant_required": [403],
    "tenant_slug_taken": [409],
    "token_expired": [401],
    "transaction_not_found": [404],
    "unauthorized": [401],
    "unknown_call": [404],
    "unknown_event_type": [422],
    "unknown_restaurant": [422],
    "unsupported_media_type": [415],
    "user_exists": [409],
    "user_not_found": [404],
    "validation_error": [422],
    "webhook_delivery_not_found": [404],
    "webhook_endpoint_disabled": [409],
    "webhook_endpoint_not_found": [404],
    "webhook_url_refused": [422],
}


def test_error_codes_stay_as_clients_know_them() -> None:
    found = {code: sorted(entry.statuses) for code, entry in error_catalogue.collect().items()}
    assert found == KNOWN_CODES


def _operations(spec: Schema) -> Iterator[tuple[str, Schema]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def test_every_json_answer_is_a_described_model(spec: Schema) -> None:
    """No route answers an untyped object (`dict[str, Any]`, a bare JSONResponse): every JSON
    success answer is a named model the document describes."""
    untyped = [route for route, body in _answers(spec) if "$ref" not in body]
    assert not untyped, f"answers without a model: {untyped}"
    silent = [
        route
        for route, operation in _operations(spec)
        for status, response in operation["responses"].items()
        if status.startswith("2") and status != "204" and not response.get("content")
    ]
    assert not silent, f"success answers with no content type: {silent}"


def test_every_route_lists_the_problem_codes_it_can_answer(spec: Schema) -> None:
    codes = set(error_catalogue.collect())
    missing = []
    for route, operation in _operations(spec):
        listed = {
            code
            for status, response in operation["responses"].items()
            if status[0] in "45"
            for code in re.findall(r"`([a-z_]+)`", response.get("description", ""))
        }
        if not listed or not listed <= codes:
            missing.append(route)
    assert not missing, f"routes that list no (or unknown) problem codes: {missing}"
