"""Schemathesis fuzzes every operation of the OpenAPI document against a real server
process (as a tenant admin): whatever it sends, the answer is never a 5xx."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from maxloyalty.config import Settings
from tests.live import served, server_env

PASSWORD = "fuzz-password-1234"
TILLS: dict[str, dict[str, str]] = {}  # a POS integration's headers per system
# On one xdist worker: the server and its tenant are set up once, not once per worker.
pytestmark = pytest.mark.xdist_group("fuzz")


class _RefusingBotApi(BaseHTTPRequestHandler):
    """Telegram refusing every token: the fuzzed bot connections stay on this machine."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        body = json.dumps({"ok": False, "error_code": 401, "description": "Unauthorized"})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def _bot_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingBotApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _cli(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "maxloyalty", *args], env=env, check=True, capture_output=True
    )


@pytest.fixture(scope="session")
def live_api(migrated: str, settings: Settings) -> Iterator[tuple[str, dict[str, str]]]:
    limits = {
        f"MAXLOYALTY_RATE_LIMIT_{name}": "100000/minute"
        for name in ("DEFAULT", "LOGIN", "IDENTIFY", "IDENTIFY_TENANT", "OTP_IP")
    }
    with ExitStack() as stack:
        bot_api = stack.enter_context(_bot_api())
        env = server_env(settings, migrated, MAXLOYALTY_TELEGRAM_API_URL=bot_api, **limits)
        base = stack.enter_context(served(env))
        owner = f"owner-{uuid.uuid4().hex[:6]}@example.com"
        _cli(env, "user", "create", "--email", owner, "--password", PASSWORD, "--role", "OWNER")
        login = {"login": owner, "password": PASSWORD}
        owner_token = httpx.post(f"{base}/api/auth/login", json=login).json()["access_token"]
        slug = f"fuzz-{uuid.uuid4().hex[:6]}"
        httpx.post(
            f"{base}/api/platform/tenants",
            json={"name": "Fuzz", "slug": slug},
            headers={"Authorization": f"Bearer {owner_token}"},
        ).raise_for_status()
        admin = f"admin@{slug}.example.com"
        _cli(
            env, "user", "create", "--email", admin, "--password", PASSWORD,
            "--role", "RESTAURANT_ADMIN", "--tenant", slug,
        )  # fmt: skip
        token = httpx.post(
            f"{base}/api/auth/login", json={"login": admin, "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        httpx.post(
            f"{base}/api/restaurants", json={"name": "R", "timezone": "UTC"}, headers=headers
        ).raise_for_status()
        httpx.post(
            f"{base}/api/loyalty/programs", json={"type": "POINTS"}, headers=headers
        ).raise_for_status()
        restaurant = httpx.get(f"{base}/api/restaurants", headers=headers).json()["items"][0]
        for system in ("CUSTOM", "RKEEPER"):
            created = httpx.post(
                f"{base}/api/pos/integrations",
                json={"restaurant_id": restaurant["id"], "system": system, "name": system},
                headers=headers,
            )
            created.raise_for_status()
            TILLS[system] = {"Authorization": f"Bearer {created.json()['api_key']}"}
        yield base, headers


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(live_api: tuple[str, dict[str, str]], mode: GenerationMode) -> None:
    """Valid requests (positive) and schema-breaking ones (negative), to every operation."""
    base, headers = live_api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    cases = st.one_of([op.as_strategy(generation_mode=mode) for op in operations])

    @settings(
        max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(case=cases)
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=base,
            headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
            checks=[not_a_server_error],
        )

    fuzz()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_from_tills(
    live_api: tuple[str, dict[str, str]], mode: GenerationMode
) -> None:
    """The till's own routes, called with POS integrations' keys."""
    base, _ = live_api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path.startswith(("/api/pos/v1/", "/api/pos/rkeeper/"))
    ]
    assert len(operations) == 7
    cases = st.one_of([op.as_strategy(generation_mode=mode) for op in operations])

    @settings(
        max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(case=cases)
    def fuzz(case: schemathesis.Case) -> None:
        till = TILLS["RKEEPER" if case.path.startswith("/api/pos/rkeeper/") else "CUSTOM"]
        case.call_and_validate(
            base_url=base,
            headers=till | {"Idempotency-Key": uuid.uuid4().hex},
            checks=[not_a_server_error],
        )

    fuzz()
