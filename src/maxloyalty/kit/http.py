"""Reading a raw request body (XML, a webhook's JSON) without taking more than we allow."""

from __future__ import annotations

from fastapi import Request

from maxloyalty.kit.errors import PayloadTooLarge


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request is larger than {limit} bytes.")


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
