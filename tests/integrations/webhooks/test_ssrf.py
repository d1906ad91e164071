"""Webhooks never reach into our own network: every address a name has is checked, at
registration and again before every attempt, and the request goes to the address that was
checked (a second lookup could answer differently: DNS rebinding), with the host's name in
the Host header and in TLS."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import certifi
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select

from maxloyalty.identity.principal import Role
from maxloyalty.integrations.webhooks.models import DeliveryStatus, WebhookDelivery
from maxloyalty.kit import ssrf
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_tenant
from tests.integrations.fake_http import FakeServer
from tests.integrations.webhooks.test_delivery import (
    HeaderAnswer,
    attempts_of,
    drain,
    ping,
    received,
    register,
)
from tests.test_app import assert_problem

PRIVATE = [
    "127.0.0.1",
    "10.1.2.3",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 - an address to refuse, nothing binds to it
    "169.254.169.254",
    "::",
    "::1",
    "fc00::1",
    "fe80::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::808:808",  # local-use NAT64
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]
PUBLIC = ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::"]


@pytest.mark.parametrize("address", PRIVATE)
def test_non_public_addresses(address: str) -> None:
    assert not ssrf.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert ssrf.is_public(ipaddress.ip_address(address))


@dataclass
class FakeDns:
    """Names our lookups resolve (literals resolve as usual), and how many lookups ran."""

    names: dict[str, str] = field(default_factory=dict)
    lookups: int = 0


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    real = ssrf.resolve_host

    async def resolve_host(host: str, port: int) -> list[ssrf.IPAddress]:
        fake.lookups += 1
        if host in fake.names:
            return [ipaddress.ip_address(fake.names[host])]
        return await real(host, port)

    monkeypatch.setattr(ssrf, "resolve_host", resolve_host)
    return fake


def _url(host: str) -> str:
    return f"https://[{host}]/hook" if ":" in host else f"https://{host}/hook"


async def test_registration_refuses_private_targets(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
    dns: FakeDns,
) -> None:
    monkeypatch.setattr(runtime.settings, "webhooks_allow_private", False)
    dns.names["loopback.example.test"] = "127.0.0.1"
    admin = await auth(Role.RESTAURANT_ADMIN, (await make_tenant(runtime)).id)
    refused = [
        *(_url(a) for a in ("::ffff:127.0.0.1", "0.0.0.0", "::", "169.254.169.254")),  # noqa: S104
        *(_url(a) for a in ("64:ff9b::7f00:1", "2002:7f00:1::")),
        "https://loopback.example.test/hook",
        "https://does-not-resolve.invalid/hook",
        "http://example.com/hook",  # not https
        "ftp://example.com/hook",
        "https://[::1/hook",  # malformed
    ]
    for url in refused:
        answer = await client.post("/api/webhooks/endpoints", json={"url": url}, headers=admin)
        assert_problem(answer, 422, "webhook_url_refused")
    # Only the embedded address counts: a NAT64 address of a public one is fine.
    await register(client, admin, _url("64:ff9b::808:808"))
    listed = await client.get("/api/webhooks/endpoints", headers=admin)
    assert [e["url"] for e in listed.json()["items"]] == [_url("64:ff9b::808:808")]


async def _count_connections(counter: list[int]) -> asyncio.Server:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counter.append(1)
        writer.close()

    return await asyncio.start_server(accept, "127.0.0.1", 0)


async def test_private_targets_are_refused_at_delivery_without_connecting(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
    dns: FakeDns,
) -> None:
    tenant = await make_tenant(runtime)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    connections: list[int] = []
    listener = await _count_connections(connections)
    port = listener.sockets[0].getsockname()[1]
    literals = ["::ffff:127.0.0.1", "0.0.0.0", "::", "169.254.169.254"]  # noqa: S104
    literals += ["64:ff9b::7f00:1", "2002:7f00:1::"]
    try:
        monkeypatch.setattr(runtime.settings, "webhooks_allow_private", False)
        dns.names["hooks.example.test"] = "8.8.8.8"  # public when registered...
        await register(client, admin, f"https://hooks.example.test:{port}/")
        monkeypatch.setattr(runtime.settings, "webhooks_allow_private", True)
        for address in literals:  # (registered while private targets were allowed)
            host = f"[{address}]" if ":" in address else address
            await register(client, admin, f"https://{host}:{port}/")
        monkeypatch.setattr(runtime.settings, "webhooks_allow_private", False)
        dns.names["hooks.example.test"] = "127.0.0.1"  # ...and ours when it is time to send
        monkeypatch.setattr(runtime.settings, "webhook_retry_schedule", [])
        await ping(runtime, tenant.id, 1)
        await drain(runtime)
    finally:
        listener.close()
        await listener.wait_closed()
    assert connections == []
    errors = sorted((a.status_code, a.error) for a in await attempts_of(runtime, tenant.id))
    assert errors == sorted(
        [(None, "hooks.example.test points into a private network (127.0.0.1).")]
        + [
            (None, f"{a} points into a private network ({ipaddress.ip_address(a)}).")
            for a in literals
        ]
    )
    async with runtime.db.transaction(tenant.id) as session:
        states = set(await session.scalars(select(WebhookDelivery.status)))
    assert states == {DeliveryStatus.FAILED}


async def test_the_request_goes_to_the_address_that_was_checked(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory, dns: FakeDns
) -> None:
    tenant = await make_tenant(runtime)
    async with FakeServer() as receiver:
        port = int(receiver.url.rsplit(":", 1)[1])
        # Only our lookup knows the name: were it looked up again to connect, that would fail.
        dns.names["rebind.example.test"] = "127.0.0.1"
        hook = await register(
            client,
            await auth(Role.RESTAURANT_ADMIN, tenant.id),
            f"http://rebind.example.test:{port}/hook",
        )
        dns.lookups = 0
        await ping(runtime, tenant.id, 1)
        await drain(runtime)
    assert [p["data"] for p in received(receiver, hook["secret"])] == [{"n": 1}]
    assert receiver.requests[0].headers["host"] == f"rebind.example.test:{port}"
    assert dns.lookups == 1  # one lookup, checked and used


async def test_redirects_are_not_followed(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = await make_tenant(runtime)
    monkeypatch.setattr(runtime.settings, "webhook_retry_schedule", [])
    async with FakeServer() as inside, FakeServer() as receiver:
        receiver.answer = HeaderAnswer(307, headers=(("Location", inside.url),))
        await register(client, await auth(Role.RESTAURANT_ADMIN, tenant.id), receiver.url)
        await ping(runtime, tenant.id, 1)
        await drain(runtime)
    assert len(receiver.requests) == 1
    assert inside.requests == []
    (attempt,) = await attempts_of(runtime, tenant.id)
    assert (attempt.status_code, attempt.succeeded) == (307, False)


class TlsServer(FakeServer):
    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self.context = context

    async def __aenter__(self) -> TlsServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        return self


def _pem(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _tls(tmp_path: Path, certified_name: str, sni: list[str]) -> ssl.SSLContext:
    """A server context with a certificate for `certified_name` from a fresh CA (written
    to ca.pem), recording the SNI names clients send into `sni`."""
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MaxLoyalty test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, certified_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(certified_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _pem(tmp_path, "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(
        _pem(tmp_path, "leaf.pem", leaf.public_bytes(serialization.Encoding.PEM)),
        _pem(
            tmp_path,
            "leaf.key",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ),
    )

    def record_sni(_socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        sni.append(name or "")

    context.sni_callback = record_sni  # type: ignore[assignment]
    return context


@pytest.fixture
async def tls_receiver(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[TlsServer, list[str]]]:
    sni: list[str] = []
    context = _tls(tmp_path, request.param, sni)
    monkeypatch.setattr(certifi, "where", lambda: str(tmp_path / "ca.pem"))  # trust our CA
    async with TlsServer(context) as server:
        yield server, sni


@pytest.mark.parametrize("tls_receiver", ["hooks.example.test"], indirect=True)
async def test_tls_names_the_host_while_connecting_to_the_checked_address(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: TokenFactory,
    dns: FakeDns,
    tls_receiver: tuple[TlsServer, list[str]],
) -> None:
    receiver, sni = tls_receiver
    tenant = await make_tenant(runtime)
    dns.names["hooks.example.test"] = "127.0.0.1"
    port = int(receiver.url.rsplit(":", 1)[1])
    hook = await register(
        client, await auth(Role.RESTAURANT_ADMIN, tenant.id), f"https://hooks.example.test:{port}/h"
    )
    await ping(runtime, tenant.id, 1)
    await drain(runtime)
    assert [p["data"] for p in received(receiver, hook["secret"])] == [{"n": 1}]
    assert sni == ["hooks.example.test"]


@pytest.mark.parametrize("tls_receiver", ["someone-else.example.test"], indirect=True)
async def test_a_certificate_for_another_name_is_refused(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: TokenFactory,
    dns: FakeDns,
    monkeypatch: pytest.MonkeyPatch,
    tls_receiver: tuple[TlsServer, list[str]],
) -> None:
    receiver, _ = tls_receiver
    tenant = await make_tenant(runtime)
    dns.names["hooks.example.test"] = "127.0.0.1"
    monkeypatch.setattr(runtime.settings, "webhook_retry_schedule", [])
    port = int(receiver.url.rsplit(":", 1)[1])
    await register(
        client, await auth(Role.RESTAURANT_ADMIN, tenant.id), f"https://hooks.example.test:{port}/h"
    )
    await ping(runtime, tenant.id, 1)
    await drain(runtime)
    assert receiver.requests == []
    (attempt,) = await attempts_of(runtime, tenant.id)
    assert attempt.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in attempt.error
