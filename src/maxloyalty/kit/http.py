"""Reading a raw request body (XML, a webhook's JSON) without taking more than we allow."""

from __future__ import annotations

from fastapi import Request

from maxloyalty.kit.errors import AppError


def _too_large(limit: int) -> AppError:
    return AppError(
        f"The request is larger than {limit} bytes.", code="payload_too_large", status=413
    )


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it (or its declared length) passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)
