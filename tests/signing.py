"""How a till signs a request for a key with `require_signature` (README: API keys)."""

from __future__ import annotations

import hashlib
import hmac


def ml_signature(
    secret: str,
    timestamp: int | str,
    method: str,
    path: str,
    body: bytes = b"",
    idempotency_key: str = "",
) -> str:
    content = f"{timestamp}.{method}.{path}.{idempotency_key}.".encode() + body
    return "v1=" + hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()
