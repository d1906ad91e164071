"""What the HTTP adapters share: the client, the timeout, and how a failed exchange looks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from maxloyalty.integrations.sms.base import SmsError


class HttpSmsSender:
    provider: ClassVar[str]

    def __init__(self, base_url: str, timeout: float, client: httpx.AsyncClient | None) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        # An injected client belongs to whoever made it; only our own is closed by aclose().
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _post(
        self, path: str, form: Mapping[str, str], auth: httpx.Auth | None = None
    ) -> httpx.Response:
        # Credentials travel in the form body, never in the URL that proxies and errors show.
        try:
            return await self._client.post(
                self._base_url + path,
                data=form,
                auth=auth or httpx.USE_CLIENT_DEFAULT,
                timeout=self._timeout,
            )
        except httpx.TransportError as exc:
            raise self._error("network", f"{type(exc).__name__}: {exc}", retryable=True) from exc

    def _json_object(self, response: httpx.Response) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            # Typically a proxy's or balancer's error page: worth another try later.
            raise self._error(
                "bad_response", f"HTTP {response.status_code}, not a JSON object", retryable=True
            )
        return payload

    def _error(self, code: str, message: str, *, retryable: bool) -> SmsError:
        return SmsError(self.provider, code, message, retryable=retryable)
