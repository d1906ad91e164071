"""Keys the platform signs with: access-token keys (rotating), the session policy that
holds them, the signer of card QR payloads (static and rotating) and the deriver of
rotating card codes. Primitives only; who uses them decides."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from maxloyalty.kit.errors import InvalidQr, QrExpired


def _kid(secret: str) -> str:
    return hashlib.sha256(b"jwt:" + secret.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class TokenKeys:
    current: str
    previous: tuple[str, ...] = ()

    def signing(self) -> tuple[str, str]:
        return _kid(self.current), self.current

    def verifying(self, kid: str) -> str | None:
        for secret in (self.current, *self.previous):
            if _kid(secret) == kid:
                return secret
        return None


@dataclass(frozen=True)
class SessionPolicy:
    keys: TokenKeys
    hmac_key: bytes
    access_ttl: timedelta
    refresh_ttl: timedelta

    def token_hash(self, token: str) -> str:
        return hmac.new(self.hmac_key, token.encode(), hashlib.sha256).hexdigest()


QR_PREFIX = "ML1"
ROTATING_QR_PREFIX = "ML2"
# A rotating code or QR is good for one window of this many seconds (unix time // this).
ROTATION_SECONDS = 60


def window_of(at: datetime) -> int:
    return int(at.timestamp()) // ROTATION_SECONDS


def window_end(window: int) -> datetime:
    return datetime.fromtimestamp((window + 1) * ROTATION_SECONDS, UTC)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class QrSigner:
    """QR payloads `ML1.<card id>.<tag>`: the tag is an HMAC-SHA256 with a key of the card's
    own tenant, so a payload cannot be forged, altered, or replayed in another network."""

    master_key: bytes

    def _key(self, tenant_id: uuid.UUID) -> bytes:
        return hmac.new(self.master_key, b"qr:" + tenant_id.bytes, hashlib.sha256).digest()

    def payload(self, tenant_id: uuid.UUID, card_id: uuid.UUID) -> str:
        tag = hmac.new(self._key(tenant_id), card_id.bytes, hashlib.sha256).digest()[:16]
        return f"{QR_PREFIX}.{_b64(card_id.bytes)}.{_b64(tag)}"

    def card_id(self, tenant_id: uuid.UUID, payload: str) -> uuid.UUID:
        invalid = InvalidQr()
        try:
            prefix, raw_id, raw_tag = payload.strip().split(".")
            card_id = uuid.UUID(bytes=_unb64(raw_id))
            tag = _unb64(raw_tag)
        except ValueError as exc:
            raise invalid from exc
        expected = hmac.new(self._key(tenant_id), card_id.bytes, hashlib.sha256).digest()[:16]
        if prefix != QR_PREFIX or not hmac.compare_digest(expected, tag):
            raise invalid
        return card_id

    # Rotating payloads `ML2.<card id>.<window>.<tag>`: the tag also covers the window, so
    # a screenshot stops working when its window ends. A key of their own (not the ML1
    # key), so neither format's tag can ever pass for the other's.
    def _rotating_key(self, tenant_id: uuid.UUID) -> bytes:
        return hmac.new(self.master_key, b"qr-rotating:" + tenant_id.bytes, hashlib.sha256).digest()

    def _rotating_tag(self, tenant_id: uuid.UUID, card_id: uuid.UUID, window: int) -> bytes:
        message = card_id.bytes + struct.pack(">Q", window)
        return hmac.new(self._rotating_key(tenant_id), message, hashlib.sha256).digest()[:16]

    def rotating_payload(self, tenant_id: uuid.UUID, card_id: uuid.UUID, window: int) -> str:
        tag = self._rotating_tag(tenant_id, card_id, window)
        return f"{ROTATING_QR_PREFIX}.{_b64(card_id.bytes)}.{window}.{_b64(tag)}"

    @staticmethod
    def is_rotating(payload: str) -> bool:
        return payload.strip().startswith(ROTATING_QR_PREFIX + ".")

    def rotating_card_id(self, tenant_id: uuid.UUID, payload: str, now: datetime) -> uuid.UUID:
        """The card of a genuine rotating payload of the window `now` is in; one of another
        window is `QrExpired` (checked after the tag: only genuine payloads learn that)."""
        invalid = InvalidQr()
        try:
            prefix, raw_id, raw_window, raw_tag = payload.strip().split(".")
            card_id = uuid.UUID(bytes=_unb64(raw_id))
            window = int(raw_window) if raw_window.isdigit() and len(raw_window) <= 12 else -1
            tag = _unb64(raw_tag)
        except ValueError as exc:
            raise invalid from exc
        if prefix != ROTATING_QR_PREFIX or window < 0:
            raise invalid
        if not hmac.compare_digest(self._rotating_tag(tenant_id, card_id, window), tag):
            raise invalid
        if window != window_of(now):
            raise QrExpired()
        return card_id


@dataclass(frozen=True)
class RotatingCodes:
    """6-digit codes for one window, TOTP-style (RFC 6238's dynamic truncation of an
    HMAC-SHA256) under a key of the tenant and the card. `counter` picks the next
    derivation when a value is taken; a code cannot be reversed to its card, so whoever
    issues one records it to be found."""

    master_key: bytes

    def _key(self, tenant_id: uuid.UUID, card_id: uuid.UUID) -> bytes:
        message = b"rotating-code:" + tenant_id.bytes + card_id.bytes
        return hmac.new(self.master_key, message, hashlib.sha256).digest()

    def code(self, tenant_id: uuid.UUID, card_id: uuid.UUID, window: int, counter: int = 0) -> str:
        digest = hmac.new(
            self._key(tenant_id, card_id), struct.pack(">QI", window, counter), hashlib.sha256
        ).digest()
        offset = digest[-1] & 0x0F
        value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
        return f"{value % 1_000_000:06d}"
