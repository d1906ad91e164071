"""The interface every SMS provider adapter implements, and its one error type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

_E164 = re.compile(r"\+[1-9]\d{6,14}")
# A digit that still has at least four digits after it: everything but the last four.
_MASKED_DIGIT = re.compile(r"\d(?=(?:\D*\d){4})")


@dataclass(frozen=True)
class SentSms:
    """A message the provider accepted; delivery itself is reported later, if at all."""

    provider: str
    message_id: str | None


class SmsError(Exception):
    """The provider did not accept a message; `retryable` says whether a later try may succeed."""

    def __init__(self, provider: str, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{provider} error {code}: {message}")
        self.provider = provider
        self.code = code
        self.message = message
        self.retryable = retryable


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> SentSms:
        """Send `text` to `phone` (E.164 with the leading +); raises SmsError."""
        ...

    async def aclose(self) -> None: ...


def mask_phone(phone: str) -> str:
    """`+79251234567` → `+*******4567`: enough to tell numbers apart in logs, not to dial."""
    return _MASKED_DIGIT.sub("*", phone)


def e164_digits(phone: str, provider: str) -> str:
    """The digits of an E.164 number, refused before it costs a request to the provider."""
    if not _E164.fullmatch(phone):
        raise SmsError(
            provider, "invalid_phone", f"not an E.164 number: {mask_phone(phone)}", retryable=False
        )
    return phone[1:]
