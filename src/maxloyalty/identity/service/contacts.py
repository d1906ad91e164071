"""Normalizing phones (E.164, default region RU) and emails before hashing or storing."""

from __future__ import annotations

import phonenumbers

from maxloyalty.identity.errors import InvalidPhone
from maxloyalty.kit.crypto import keyring
from maxloyalty.kit.errors import FieldError


def normalize_phone(raw: str, field: str = "phone") -> str:
    try:
        number = phonenumbers.parse(raw, "RU")
    except phonenumbers.NumberParseException as exc:
        raise _invalid(field, "is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise _invalid(field, "is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    return raw.strip().lower()


def phone_index(e164: str) -> str:
    return keyring().blind_index("phone:" + e164)


def email_index(email: str) -> str:
    return keyring().blind_index("email:" + normalize_email(email))


def _invalid(field: str, message: str) -> InvalidPhone:
    return InvalidPhone(
        f"The {field} {message}.",
        errors=[FieldError(field=f"body.{field}", message=message, type="phone")],
    )
