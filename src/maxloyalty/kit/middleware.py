"""ASGI middleware: request id on every answer, client facts, metrics and an access log."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maxloyalty.kit import context, metrics

REQUEST_ID_HEADER = "x-request-id"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
log = structlog.get_logger("maxloyalty.access")


def _route_template(scope: Scope) -> str:
    """The matched route's pattern (not the raw path), so metric labels stay bounded."""
    return str(getattr(scope.get("route"), "path", "unmatched"))


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get(REQUEST_ID_HEADER, "")
        rid = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        peer = scope.get("client")
        tokens = (
            context.request_id.set(rid),
            context.client.set(
                context.Client(ip=peer[0] if peer else None, user_agent=headers.get("user-agent"))
            ),
        )
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", rid.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            metrics.http_requests.labels(method, route, str(status)).inc()
            metrics.http_latency.labels(method, route).observe(elapsed)
            log.info(
                "request",
                method=method,
                path=scope["path"],
                status=status,
                ms=round(elapsed * 1000, 2),
            )
            context.client.reset(tokens[1])
            context.request_id.reset(tokens[0])
