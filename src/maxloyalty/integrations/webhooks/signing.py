"""Standard Webhooks signatures: `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>` with
the secret's bytes (shown as `whsec_<base64>`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(keys: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature per secret, space-separated (the spec's way through a key rotation:
    a receiver accepts the message if any of them verifies)."""
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)
