"""SMS.ru (https://sms.ru/api/send)."""

from __future__ import annotations

from typing import Any

import httpx

from maxloyalty.integrations.sms._http import HttpSmsSender
from maxloyalty.integrations.sms.base import SentSms, e164_digits

SMSRU_URL = "https://sms.ru"
# 220: service temporarily unavailable, 500: server error,
# 231/233: too many identical messages or codes to one number within minutes.
_RETRYABLE = frozenset({"220", "231", "233", "500"})


class SmsRuSender(HttpSmsSender):
    provider = "smsru"

    def __init__(
        self,
        api_id: str,
        *,
        base_url: str = SMSRU_URL,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, timeout, client)
        self._api_id = api_id

    async def send(self, phone: str, text: str) -> SentSms:
        digits = e164_digits(phone, self.provider)
        response = await self._post(
            "/sms/send", {"api_id": self._api_id, "to": digits, "msg": text, "json": "1"}
        )
        payload = self._json_object(response)
        self._raise_unless_ok(payload)
        # The request as a whole can succeed while the one number in it is refused.
        numbers = payload.get("sms")
        result = numbers.get(digits) if isinstance(numbers, dict) else None
        if not isinstance(result, dict):
            raise self._error("bad_response", "no result for the number", retryable=True)
        self._raise_unless_ok(result)
        sms_id = result.get("sms_id")
        return SentSms(self.provider, None if sms_id is None else str(sms_id))

    def _raise_unless_ok(self, status: dict[str, Any]) -> None:
        if status.get("status") != "OK":
            code = str(status.get("status_code", "unknown"))
            message = str(status.get("status_text", ""))
            raise self._error(code, message, retryable=code in _RETRYABLE)
