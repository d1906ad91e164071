"""iikoCloud API client (https://api-ru.iiko.services): organizations, terminal groups, webhooks.

Every call but the login carries `Authorization: Bearer <token>`; the token comes from
`POST /api/1/access_token` with the apiLogin and lives about an hour. It is kept in the
shared cache (Redis, or this process's memory) for 55 minutes, so every client and process
of the installation uses one token per apiLogin.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import httpx

from maxloyalty.integrations.pos.iiko.errors import IikoError
from maxloyalty.kit.cache import Cache

IIKO_CLOUD_URL = "https://api-ru.iiko.services"
# iiko keeps a token for an hour; a fresh one is fetched well before that.
TOKEN_LIFETIME = 55 * 60
# iiko is told to give up this much sooner than we do, so that its 408 still reaches us.
TIMEOUT_MARGIN = 2.0
RETURNED_EXTERNAL_DATA = ["maxloyalty.card"]
_RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class Organization:
    id: str
    name: str


@dataclass(frozen=True)
class TerminalGroup:
    id: str
    organization_id: str
    name: str
    address: str
    asleep: bool  # iiko put it to sleep for inactivity (`/api/1/terminal_groups/awake`)


@dataclass(frozen=True)
class TokenCache:
    """Where access tokens wait between calls: `cache` under a keyed hash of the address
    and apiLogin, so the apiLogin (a lasting secret) never becomes a key."""

    cache: Cache
    secret: bytes

    def key(self, base_url: str, api_login: str) -> str:
        digest = hmac.new(self.secret, f"{base_url}\n{api_login}".encode(), hashlib.sha256)
        return f"iiko:token:{digest.hexdigest()}"


class IikoCloud:
    def __init__(
        self,
        base_url: str,
        api_login: str,
        tokens: TokenCache,
        *,
        timeout: float = 15.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_login = api_login
        self._cache = tokens.cache
        self._cache_key = tokens.key(self._base_url, api_login)
        self._timeout = timeout
        self._timeout_header = str(max(1, int(timeout - TIMEOUT_MARGIN)))
        # An injected client belongs to whoever made it; only our own is closed by aclose().
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient()
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def organizations(self) -> list[Organization]:
        """Every organization the apiLogin may see (enabled ones only)."""
        payload = await self._call(
            "/api/1/organizations",
            {"organizationIds": None, "returnAdditionalInfo": False, "includeDisabled": False},
        )
        return [
            Organization(id=_str(item, "id"), name=_str(item, "name", default=""))
            for item in _objects(payload, "organizations")
        ]

    async def terminal_groups(self, organization_ids: list[str]) -> list[TerminalGroup]:
        """The terminal groups of these organizations in one flat list, the sleeping ones
        (which iiko keeps apart) flagged."""
        if not organization_ids:
            return []
        payload = await self._call("/api/1/terminal_groups", {"organizationIds": organization_ids})
        groups: list[TerminalGroup] = []
        for key, asleep in (("terminalGroups", False), ("terminalGroupsInSleep", True)):
            for wrapper in _objects(payload, key):
                owner = _str(wrapper, "organizationId")
                groups.extend(
                    TerminalGroup(
                        id=_str(item, "id"),
                        organization_id=_str(item, "organizationId", default=owner),
                        name=_str(item, "name", default=""),
                        address=_str(item, "address", default=""),
                        asleep=asleep,
                    )
                    for item in _objects(wrapper, "items")
                )
        return groups

    async def register_webhook(self, organization_id: str, uri: str, auth_token: str) -> str:
        """Have iiko post closed table and delivery orders to `uri`; returns the correlationId.

        iiko keeps one webhook setting per organization and apiLogin: this replaces it.
        """
        payload = await self._call(
            "/api/1/webhooks/update_settings",
            {
                "organizationId": organization_id,
                "webHooksUri": uri,
                "authToken": auth_token,
                "webHooksFilter": {
                    "tableOrderFilter": {"orderStatuses": ["Closed"]},
                    "deliveryOrderFilter": {
                        "orderStatuses": ["Closed"],
                        # Delivery events carry only the external data keys asked for.
                        "returnedExternalDataKeys": RETURNED_EXTERNAL_DATA,
                    },
                },
            },
        )
        return _str(payload, "correlationId")

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        token = await self._access_token()
        response = await self._post(path, body, token)
        if response.status_code == 401:
            # The token expired or was revoked early: one fresh login, one more try.
            await self._forget(token)
            token = await self._access_token()
            response = await self._post(path, body, token)
        return self._payload(response)

    async def _access_token(self) -> str:
        # Under the lock, so that this client's callers arriving together log in once.
        async with self._lock:
            cached = await self._cache.get(self._cache_key)
            if cached is not None:
                return cached.decode()
            response = await self._post("/api/1/access_token", {"apiLogin": self._api_login})
            token = self._payload(response).get("token")
            if not isinstance(token, str) or not token:
                raise IikoError("bad_response", "no token in the answer", retryable=True)
            await self._cache.set(self._cache_key, token.encode(), TOKEN_LIFETIME)
            return token

    async def _forget(self, token: str) -> None:
        async with self._lock:
            # Another caller may already have replaced it with a fresh one.
            if await self._cache.get(self._cache_key) == token.encode():
                await self._cache.delete(self._cache_key)

    async def _post(
        self, path: str, body: dict[str, Any], token: str | None = None
    ) -> httpx.Response:
        # The apiLogin travels in the body of the login call only, never in a URL.
        headers = {"Timeout": self._timeout_header}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            # httpx's timeout bounds each phase (connect, every read); this bounds the call.
            async with asyncio.timeout(self._timeout):
                return await self._client.post(
                    self._base_url + path, json=body, headers=headers, timeout=self._timeout
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise IikoError(
                "timeout", f"no answer within {self._timeout:g} s", retryable=True
            ) from exc
        except httpx.TransportError as exc:
            raise IikoError(
                "network", self._redact(f"{type(exc).__name__}: {exc}"), retryable=True
            ) from exc

    def _payload(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        try:
            parsed: object = response.json()
        except ValueError:
            parsed = None
        payload: dict[str, Any] | None = parsed if isinstance(parsed, dict) else None
        if response.is_success:
            if payload is None:
                # Typically a proxy's or balancer's page: worth another try later.
                message = f"HTTP {status}, not a JSON object"
                raise IikoError("bad_response", message, status=status, retryable=True)
            return payload
        description = f"HTTP {status}"
        correlation_id = None
        if payload is not None:
            detail = payload.get("errorDescription") or payload.get("error")
            if detail:
                description = f"{description}: {detail}"
            if isinstance(payload.get("correlationId"), str):
                correlation_id = payload["correlationId"]
        if status == 401:
            code, retryable = "auth_failed", False
        else:
            code, retryable = "rejected", status >= 500 or status in _RETRYABLE_STATUSES
        raise IikoError(
            code,
            self._redact(description),
            status=status,
            retryable=retryable,
            correlation_id=correlation_id,
        )

    def _redact(self, text: str) -> str:
        # iiko may quote the apiLogin back in an error; it must not reach logs from here.
        return text.replace(self._api_login, "***") if self._api_login else text


def _objects(payload: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = payload.get(key)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise IikoError("bad_response", f"{key!r} is not a list of objects", retryable=True)
    return items


def _str(payload: dict[str, Any], key: str, *, default: str | None = None) -> str:
    value = payload.get(key)
    if isinstance(value, str):
        return value
    if value is None and default is not None:
        return default
    raise IikoError("bad_response", f"{key!r} is not a string", retryable=True)
