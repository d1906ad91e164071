"""Personal data at rest: AES-GCM with key ids (for rotation) and HMAC blind indexes.

Ciphertexts look like `<key id>:<base64url(nonce | ciphertext | tag)>`; the key id is also
bound as associated data, so a ciphertext cannot be replayed under another key's label.
A blind index is a keyed HMAC of the normalized value: equal inputs give equal indexes
(for lookups and uniqueness) without the database learning the value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from maxloyalty.config import Settings


def _derive(material: str, purpose: bytes) -> bytes:
    """A 256-bit key for one purpose from a configured secret string."""
    return hmac.new(material.encode(), purpose, hashlib.sha256).digest()


def key_id(material: str) -> str:
    return hashlib.sha256(material.encode()).hexdigest()[:8]


class Keyring:
    def __init__(self, current: str, previous: list[str], index_secret: str) -> None:
        self._active = key_id(current)
        self._keys = {key_id(m): AESGCM(_derive(m, b"pii-aes-gcm")) for m in [current, *previous]}
        self._index_key = _derive(index_secret, b"pii-blind-index")

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self._active].encrypt(nonce, plaintext.encode(), self._active.encode())
        return f"{self._active}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str) -> str:
        kid, _, body = token.partition(":")
        key = self._keys.get(kid)
        if key is None:
            raise ValueError(f"unknown encryption key id {kid!r}")
        raw = base64.urlsafe_b64decode(body)
        try:
            return key.decrypt(raw[:12], raw[12:], kid.encode()).decode()
        except InvalidTag as exc:
            raise ValueError("ciphertext was altered or uses another key") from exc

    def needs_rotation(self, token: str) -> bool:
        return not token.startswith(self._active + ":")

    def blind_index(self, normalized: str) -> str:
        return hmac.new(self._index_key, normalized.encode(), hashlib.sha256).hexdigest()


def keyring_of(settings: Settings) -> Keyring:
    """The installation's keyring: its current and retired PII keys, and the index key."""
    return Keyring(
        settings.secret("pii_key"),
        [k.get_secret_value() for k in settings.previous_pii_keys],
        settings.secret("blind_index_key"),
    )


_keyring: Keyring | None = None


def configure(keyring: Keyring) -> None:
    """Install the process's keyring (done once at start-up by the runtime)."""
    global _keyring
    _keyring = keyring


def keyring() -> Keyring:
    if _keyring is None:
        raise RuntimeError("the PII keyring is not configured")
    return _keyring


class EncryptedText(TypeDecorator[str]):
    """A string column stored encrypted; the ORM sees plaintext."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keyring().encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keyring().decrypt(value)
