"""Refuse outbound targets (tenants' webhook URLs, a till vendor's cloud address) inside
our own network: private, loopback, link-local and other non-public addresses (by every
address the name resolves to, and by the IPv4 address a NAT64, 6to4 or IPv4-mapped IPv6
address carries), and plain http.

`resolve` answers the address it vetted, so the caller connects to that address and not to
whatever a second lookup of the name returns (DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes whose last 32 bits are an IPv4 address that a translator or the kernel
# connects to: NAT64's well-known prefix and the deprecated IPv4-compatible addresses.
_LOW_32_BITS_IPV4 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::/96"))
# NAT64 for a network's own use (RFC 8215): never a public destination.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


class TargetRefused(Exception):
    """The address may not be called; each caller answers it as its own refusal."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _LOW_32_BITS_IPV4):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Globally reachable, and so is any IPv4 address it embeds (Python's `is_global`
    counts 64:ff9b::7f00:1 and 2002:7f00:1:: as global although they reach 127.0.0.1)."""
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
    return True


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an address literal resolves to itself)."""
    infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Target:
    host: str
    address: IPAddress  # connect here, naming `host` in the Host header and TLS


def _checked_url(url: str, *, allow_private: bool) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port  # both parse lazily and may raise
    except ValueError as exc:
        raise TargetRefused("The URL is malformed.") from exc
    if parts.scheme not in {"https", "http"} or not host:
        raise TargetRefused("The URL must be an absolute http(s) URL.")
    if not allow_private and parts.scheme != "https":
        raise TargetRefused("The URL must use https.")
    return host, port or (443 if parts.scheme == "https" else 80)


async def resolve(url: str, *, allow_private: bool) -> Target:
    """The address to connect to for `url`, refused (`TargetRefused`) unless it and every other
    address of the name are public (or `allow_private`: development and tests)."""
    host, port = _checked_url(url, allow_private=allow_private)
    try:
        addresses = await resolve_host(host, port)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"{host} does not resolve.") from exc
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise TargetRefused(f"{host} points into a private network ({address}).")
    return Target(host=host, address=addresses[0])


async def check_target(url: str, *, allow_private: bool) -> None:
    """Registration-time check of a URL nothing connects to yet."""
    if allow_private:
        _checked_url(url, allow_private=True)  # names need not resolve here
        return
    await resolve(url, allow_private=False)
