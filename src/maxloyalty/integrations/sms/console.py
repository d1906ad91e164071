"""Development stand-in for a provider: messages go to the log and stay in memory."""

from __future__ import annotations

import uuid

import structlog

from maxloyalty.integrations.sms.base import SentSms, e164_digits, mask_phone


class ConsoleSmsSender:
    provider = "console"

    def __init__(self, keep: int = 100) -> None:
        # The last `keep` messages as (phone, text), for tests and the dev UI to read codes from.
        self.outbox: list[tuple[str, str]] = []
        self._keep = keep
        # Per instance rather than per module: a module logger is cached on first use and
        # would then miss any later logging configuration.
        self._log = structlog.get_logger(__name__)

    async def send(self, phone: str, text: str) -> SentSms:
        e164_digits(phone, self.provider)  # refuse what a real provider would refuse
        message_id = uuid.uuid4().hex
        self.outbox.append((phone, text))
        del self.outbox[: -self._keep]
        self._log.info("sms_console", phone=mask_phone(phone), text=text, message_id=message_id)
        return SentSms(self.provider, message_id)

    async def aclose(self) -> None:
        """Nothing to release."""
