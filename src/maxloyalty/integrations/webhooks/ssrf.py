"""Refuse outbound targets (tenants' webhook URLs, a till vendor's cloud address) inside
our own network: private, loopback, link-local and other non-public addresses (by every
address the name resolves to), and plain http."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from maxloyalty.kit.errors import AppError


def _refuse(detail: str, code: str) -> AppError:
    return AppError(detail, code=code, status=422)


async def check_target(url: str, *, allow_private: bool, code: str = "webhook_url_refused") -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise _refuse("The URL must be an absolute http(s) URL.", code)
    if allow_private:
        return  # development and tests only
    if parts.scheme != "https":
        raise _refuse("The URL must use https.", code)
    try:
        infos = await asyncio.to_thread(
            socket.getaddrinfo, parts.hostname, parts.port or 443, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise _refuse(f"{parts.hostname} does not resolve.", code) from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise _refuse(f"{parts.hostname} points into a private network ({address}).", code)
