"""SMSC.ru (https://smsc.ru/api/http/send/)."""

from __future__ import annotations

import httpx

from maxloyalty.integrations.sms._http import HttpSmsSender
from maxloyalty.integrations.sms.base import SentSms, e164_digits

SMSC_URL = "https://smsc.ru"
# 4: this IP is blocked for a while after many errors, 9: too many identical requests per minute.
_RETRYABLE = frozenset({"4", "9"})


class SmscSender(HttpSmsSender):
    provider = "smsc"

    def __init__(
        self,
        login: str | None = None,
        password: str | None = None,
        *,
        apikey: str | None = None,
        base_url: str = SMSC_URL,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if apikey:
            self._credentials = {"apikey": apikey}
        elif login and password:
            self._credentials = {"login": login, "psw": password}
        else:
            raise ValueError("SMSC.ru needs an apikey, or a login and a password")
        super().__init__(base_url, timeout, client)

    async def send(self, phone: str, text: str) -> SentSms:
        form = {
            **self._credentials,
            "phones": e164_digits(phone, self.provider),
            "mes": text,
            "fmt": "3",  # answer in JSON
            "charset": "utf-8",
        }
        payload = self._json_object(await self._post("/sys/send.php", form))
        if "error_code" in payload:
            code = str(payload["error_code"])
            message = str(payload.get("error", ""))
            raise self._error(code, message, retryable=code in _RETRYABLE)
        if "id" not in payload:
            raise self._error("bad_response", "neither an id nor an error", retryable=True)
        return SentSms(self.provider, str(payload["id"]))
