"""Twilio Programmable Messaging (https://www.twilio.com/docs/messaging/api/message-resource)."""

from __future__ import annotations

import httpx

from maxloyalty.integrations.sms._http import HttpSmsSender
from maxloyalty.integrations.sms.base import SentSms, e164_digits

TWILIO_URL = "https://api.twilio.com"


class TwilioSender(HttpSmsSender):
    provider = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        base_url: str = TWILIO_URL,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if bool(from_number) == bool(messaging_service_sid):
            raise ValueError("Twilio needs exactly one of from_number and messaging_service_sid")
        super().__init__(base_url, timeout, client)
        self._path = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._origin = (
            {"From": from_number}
            if from_number
            else {"MessagingServiceSid": messaging_service_sid or ""}
        )

    async def send(self, phone: str, text: str) -> SentSms:
        e164_digits(phone, self.provider)  # Twilio takes the number as is, with the +
        form = {"To": phone, "Body": text, **self._origin}
        response = await self._post(self._path, form, auth=self._auth)
        payload = self._json_object(response)
        if response.is_success:
            sid = payload.get("sid")
            if not isinstance(sid, str):
                raise self._error("bad_response", "no message sid", retryable=True)
            return SentSms(self.provider, sid)
        status = response.status_code
        raise self._error(
            str(payload.get("code", f"http_{status}")),
            str(payload.get("message", "")),
            retryable=status == httpx.codes.TOO_MANY_REQUESTS or status >= 500,
        )
