"""The card signers' primitives: rotating codes (TOTP-style) and rotating QR payloads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from maxloyalty.kit.errors import InvalidQr, QrExpired
from maxloyalty.kit.signing import QrSigner, RotatingCodes, window_end, window_of

TENANT, CARD, OTHER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
NOW = datetime(2026, 12, 3, 9, 15, 42, tzinfo=UTC)


def test_windows_are_unix_minutes() -> None:
    window = window_of(NOW)
    assert window == int(NOW.timestamp()) // 60
    assert window_end(window) == datetime(2026, 12, 3, 9, 16, tzinfo=UTC)
    assert window_of(window_end(window)) == window + 1


def test_codes_are_six_digits_per_card_window_and_counter() -> None:
    codes = RotatingCodes(b"k" * 32)
    window = window_of(NOW)
    code = codes.code(TENANT, CARD, window)
    assert len(code) == 6
    assert code.isdigit()
    assert codes.code(TENANT, CARD, window) == code  # derived, not drawn
    others = {
        codes.code(TENANT, CARD, window + 1),
        codes.code(TENANT, CARD, window, 1),
        codes.code(TENANT, OTHER, window),
        codes.code(OTHER, CARD, window),
        RotatingCodes(b"j" * 32).code(TENANT, CARD, window),
    }
    assert code not in others
    # Spread over the six digits: many windows, many distinct values, leading zeros kept.
    many = [codes.code(TENANT, CARD, w) for w in range(2000)]
    assert len(set(many)) > 1990
    assert all(len(c) == 6 for c in many)


def test_rotating_qr_is_good_in_its_window_only() -> None:
    signer = QrSigner(b"q" * 32)
    window = window_of(NOW)
    payload = signer.rotating_payload(TENANT, CARD, window)
    assert payload.startswith("ML2.")
    assert signer.is_rotating(payload)
    assert not signer.is_rotating(signer.payload(TENANT, CARD))
    assert signer.rotating_card_id(TENANT, payload, NOW) == CARD
    with pytest.raises(QrExpired):
        signer.rotating_card_id(TENANT, payload, window_end(window))
    prefix, card, _, tag = payload.split(".")
    forged = [
        f"{prefix}.{card}.{window + 1}.{tag}",  # moved to a later window
        signer.rotating_payload(OTHER, CARD, window),  # another network's
        payload[:-2] + "AA",
        f"{prefix}.{card}.-5.{tag}",
        f"{prefix}.{card}.{tag}",
        f"ML1.{card}.{window}.{tag}",
        "ML2.garbage",
    ]
    for bad in forged:
        with pytest.raises(InvalidQr):
            signer.rotating_card_id(TENANT, bad, NOW)
    # Neither format's tag passes for the other's.
    with pytest.raises(InvalidQr):
        signer.card_id(TENANT, f"ML1.{card}.{tag}")
