"""Crypto, tokens and Telegram initData: the pieces the sign-in flows stand on."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.service.contacts import normalize_phone
from maxloyalty.identity.service.passwords import hash_password, verify_password
from maxloyalty.identity.service.telegram import validate_init_data
from maxloyalty.identity.service.tokens import decode_access_token, issue_access_token
from maxloyalty.kit.crypto import Keyring
from maxloyalty.kit.errors import AppError, Unauthorized
from maxloyalty.kit.signing import TokenKeys

OLD, NEW = "old-secret-" + "o" * 32, "new-secret-" + "n" * 32
VECTOR = (
    "auth_date=1650385342&user=%7B%22id%22%3A42%2C%22first_name%22%3A%22Test%22%7D"
    "&query_id=test&hash=46d2ea5e32911ec8d30999b56247654460c0d20949b6277af519e76271182803"
)


def test_encryption_round_trip_and_rotation() -> None:
    old = Keyring("old-key", [], "index")
    token = old.encrypt("+79251234567")
    assert "+7925" not in token
    assert old.decrypt(token) == "+79251234567"
    assert old.encrypt("+79251234567") != token  # fresh nonce each time
    rotated = Keyring("new-key", ["old-key"], "index")
    assert rotated.decrypt(token) == "+79251234567"
    assert rotated.needs_rotation(token)
    assert not rotated.needs_rotation(rotated.encrypt("x"))
    with pytest.raises(ValueError, match="unknown encryption key"):
        Keyring("new-key", [], "index").decrypt(token)


def test_tampered_ciphertext_is_rejected() -> None:
    ring = Keyring("k", [], "i")
    kid, body = ring.encrypt("secret").split(":")
    flipped = body[:20] + ("A" if body[20] != "A" else "B") + body[21:]  # past the nonce
    with pytest.raises(ValueError, match="altered"):
        ring.decrypt(f"{kid}:{flipped}")


def test_blind_index_is_keyed_and_deterministic() -> None:
    a, b = Keyring("k1", [], "index-1"), Keyring("k2", [], "index-1")
    assert a.blind_index("+79251234567") == b.blind_index("+79251234567")
    assert a.blind_index("+79251234567") != Keyring("k1", [], "index-2").blind_index("+79251234567")


@pytest.mark.parametrize(
    ("raw", "e164"),
    [("8 (925) 123-45-67", "+79251234567"), ("+7 925 123 4567", "+79251234567")],
)
def test_phones_normalize_to_e164(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize("raw", ["12345", "not a phone", "+7 000 000 00 00"])
def test_bad_phones_are_422(raw: str) -> None:
    with pytest.raises(AppError) as err:
        normalize_phone(raw)
    assert (err.value.status, err.value.code) == (422, "invalid_phone")


def test_passwords() -> None:
    hashed = hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse battery staple")
    assert not verify_password(hashed, "wrong")
    assert not verify_password(None, "anything")


def test_token_keys_rotate() -> None:
    principal = Principal(uuid.uuid4(), Role.CASHIER, uuid.uuid4(), frozenset({uuid.uuid4()}))
    old = TokenKeys(OLD)
    session_id = uuid.uuid4()
    token = issue_access_token(old, principal, timedelta(minutes=5), session_id)
    assert decode_access_token(TokenKeys(NEW, (OLD,)), token) == (principal, session_id)
    with pytest.raises(Unauthorized) as err:
        decode_access_token(TokenKeys(NEW), token)
    assert err.value.code == "invalid_token"
    head, payload, sig = token.split(".")
    with pytest.raises(Unauthorized):
        decode_access_token(old, f"{head}.{payload}.{sig[:-2]}xx")


def test_telegram_reference_vector() -> None:
    user = validate_init_data("42:TEST", VECTOR, timedelta(days=365 * 30))
    assert user.id == 42
    assert user.first_name == "Test"


@pytest.mark.parametrize(
    "tampered",
    [
        VECTOR.replace("query_id=test", "query_id=tesT"),
        VECTOR.replace("auth_date=1650385342", "auth_date=1650385343"),
        VECTOR.replace("%22id%22%3A42", "%22id%22%3A43"),
        VECTOR[:-1] + "4",
        VECTOR.replace("&hash=", "&nohash="),
    ],
)
def test_telegram_tampered_init_data_fails(tampered: str) -> None:
    with pytest.raises(Unauthorized):
        validate_init_data("42:TEST", tampered, timedelta(days=365 * 30))


def test_telegram_wrong_bot_or_stale_data_fails() -> None:
    with pytest.raises(Unauthorized):
        validate_init_data("43:TEST", VECTOR, timedelta(days=365 * 30))
    with pytest.raises(Unauthorized, match="too old"):
        validate_init_data("42:TEST", VECTOR, timedelta(days=1))


def signed_init_data(bot_token: str, user_id: int, auth_date: int | None = None) -> str:
    """initData as Telegram would sign it (for the sign-in flow tests)."""
    fields = {
        "auth_date": str(auth_date or int(time.time())),
        "query_id": "AAH",
        "user": json.dumps({"id": user_id, "first_name": "Гость", "username": "guest"}),
    }
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)
