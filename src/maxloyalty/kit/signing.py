"""Keys the platform signs with: access-token keys (rotating), the session policy that
holds them, and the signer of card QR payloads. Primitives only; who uses them decides."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import timedelta

from maxloyalty.kit.errors import InvalidQr


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
