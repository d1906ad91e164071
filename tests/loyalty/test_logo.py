"""The programme's logo: uploaded as the image itself, checked (type, magic number, size),
kept per programme under the tenant's row-level security, served to the guests' pages with
an ETag, and shown on the card."""

from __future__ import annotations

import hashlib
import io
import uuid

import httpx
import pytest
import segno
from sqlalchemy import select

from maxloyalty.audit.models import ActivityLog
from maxloyalty.identity.principal import Role
from maxloyalty.loyalty.models import MAX_LOGO_BYTES, BrandLogo
from maxloyalty.network.models import Tenant
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_program, make_tenant
from tests.guests.test_sign_in import PHONE, last_code
from tests.test_app import assert_problem


def _png() -> bytes:
    out = io.BytesIO()
    segno.make("logo").save(out, kind="png", scale=3)
    return out.getvalue()


PNG = _png()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + b"\x00" * 24
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def _path(program_id: object) -> str:
    return f"/api/loyalty/programs/{program_id}/logo"


async def _put(
    client: httpx.AsyncClient, program_id: object, headers: dict[str, str], kind: str, data: bytes
) -> httpx.Response:
    return await client.put(
        _path(program_id), content=data, headers=headers | {"Content-Type": kind}
    )


async def _stored(runtime: Runtime, tenant: Tenant) -> list[str]:
    async with runtime.db.transaction(tenant.id) as session:
        return list(await session.scalars(select(BrandLogo.sha256)))


async def _listed_logo(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> dict[str, object] | None:
    listed = await client.get("/api/loyalty/programs", headers=headers)
    assert listed.status_code == 200, listed.text
    logo: dict[str, object] | None = listed.json()["items"][0]["logo"]
    return logo


@pytest.mark.parametrize(
    ("kind", "data"),
    [("image/png", PNG), ("image/jpeg", JPEG), ("image/webp", WEBP), ("Image/PNG; q=1", PNG)],
)
async def test_an_admin_uploads_a_logo_and_guests_pages_load_it(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory, kind: str, data: bytes
) -> None:
    tenant = await make_tenant(runtime)
    program = await make_program(runtime, tenant)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    assert (await client.get(f"/app/{tenant.slug}/logo")).status_code == 404

    uploaded = await _put(client, program.id, admin, kind, data)
    assert uploaded.status_code == 200, uploaded.text
    digest = hashlib.sha256(data).hexdigest()
    media_type = kind.split(";")[0].lower()
    logo = {"content_type": media_type, "size": len(data), "sha256": digest}
    assert uploaded.json()["logo"] == logo
    assert await _listed_logo(client, admin) == logo

    served = await client.get(f"/app/{tenant.slug}/logo?v={digest}")
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-type"] == media_type
    assert served.headers["etag"] == f'"{digest}"'
    assert served.headers["cache-control"] == "public, max-age=86400"
    assert served.headers["x-content-type-options"] == "nosniff"
    again = await client.get(f"/app/{tenant.slug}/logo", headers={"If-None-Match": f'"{digest}"'})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == f'"{digest}"'


async def test_a_new_logo_replaces_the_old_one_and_the_log_keeps_no_bytes(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    program = await make_program(runtime, tenant)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    old = hashlib.sha256(PNG).hexdigest()
    assert (await _put(client, program.id, admin, "image/png", PNG)).status_code == 200
    assert (await _put(client, program.id, admin, "image/jpeg", JPEG)).status_code == 200

    assert await _stored(runtime, tenant) == [hashlib.sha256(JPEG).hexdigest()]
    stale = await client.get(f"/app/{tenant.slug}/logo", headers={"If-None-Match": f'"{old}"'})
    assert stale.status_code == 200
    assert stale.content == JPEG
    async with runtime.db.transaction(tenant.id) as session:
        entries = list(
            await session.scalars(
                select(ActivityLog)
                .where(ActivityLog.action == "program.logo_set")
                .order_by(ActivityLog.created_at)
            )
        )
    assert [(e.before, e.after) for e in entries] == [
        (None, {"content_type": "image/png", "size": len(PNG), "sha256": old}),
        (
            {"content_type": "image/png", "size": len(PNG), "sha256": old},
            {
                "content_type": "image/jpeg",
                "size": len(JPEG),
                "sha256": hashlib.sha256(JPEG).hexdigest(),
            },
        ),
    ]


@pytest.mark.parametrize(
    ("kind", "data", "status", "code"),
    [
        ("image/svg+xml", SVG, 415, "logo_type_unsupported"),
        ("text/html", b"<b>x</b>", 415, "logo_type_unsupported"),
        ("", PNG, 415, "logo_type_unsupported"),
        ("image/png", SVG, 422, "logo_invalid"),  # an SVG declared a PNG
        ("image/png", JPEG, 422, "logo_invalid"),
        ("image/jpeg", PNG, 422, "logo_invalid"),
        ("image/webp", b"RIFF\x00\x00\x00\x00WAVEfmt ", 422, "logo_invalid"),
        ("image/png", b"", 422, "logo_invalid"),
        ("image/png", PNG[:8] + b"\x00" * MAX_LOGO_BYTES, 413, "payload_too_large"),
    ],
    ids=[
        "svg",
        "html",
        "no-type",
        "svg-as-png",
        "jpeg-as-png",
        "png-as-jpeg",
        "wav",
        "empty",
        "big",
    ],
)
async def test_what_is_not_a_small_png_jpeg_or_webp_is_refused_and_nothing_kept(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: TokenFactory,
    kind: str,
    data: bytes,
    status: int,
    code: str,
) -> None:
    tenant = await make_tenant(runtime)
    program = await make_program(runtime, tenant)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    assert_problem(await _put(client, program.id, admin, kind, data), status, code)
    assert await _stored(runtime, tenant) == []
    assert await _listed_logo(client, admin) is None


async def test_exactly_the_limit_is_accepted(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    program = await make_program(runtime, tenant)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    largest = PNG[:8] + b"\x00" * (MAX_LOGO_BYTES - 8)
    uploaded = await _put(client, program.id, admin, "image/png", largest)
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["logo"]["size"] == MAX_LOGO_BYTES


async def test_another_network_neither_sees_nor_replaces_nor_removes_the_logo(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant, other = await make_tenant(runtime), await make_tenant(runtime)
    program = await make_program(runtime, tenant)
    await make_program(runtime, other)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    outsider = await auth(Role.RESTAURANT_ADMIN, other.id)
    assert (await _put(client, program.id, admin, "image/png", PNG)).status_code == 200

    replaced = await _put(client, program.id, outsider, "image/jpeg", JPEG)
    assert_problem(replaced, 404, "program_not_found")
    assert_problem(
        await client.delete(_path(program.id), headers=outsider), 404, "program_not_found"
    )
    assert await _listed_logo(client, outsider) is None
    assert (await client.get(f"/app/{other.slug}/logo")).status_code == 404
    async with runtime.db.transaction(other.id) as session:  # row-level security
        assert list(await session.scalars(select(BrandLogo.id))) == []
    assert await _stored(runtime, tenant) == [hashlib.sha256(PNG).hexdigest()]
    assert (await client.get(f"/app/{tenant.slug}/logo")).content == PNG


async def test_only_the_admin_changes_the_logo(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    program = await make_program(runtime, tenant)
    manager = await auth(Role.MANAGER, tenant.id)
    assert_problem(await _put(client, program.id, manager, "image/png", PNG), 403, "role_forbidden")
    assert_problem(await _put(client, program.id, {}, "image/png", PNG), 401, "not_authenticated")
    missing = await _put(
        client, uuid.uuid4(), await auth(Role.RESTAURANT_ADMIN, tenant.id), "image/png", PNG
    )
    assert_problem(missing, 404, "program_not_found")
    assert await _stored(runtime, tenant) == []


async def test_removing_the_logo(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    program = await make_program(runtime, tenant)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    assert (await _put(client, program.id, admin, "image/webp", WEBP)).status_code == 200

    removed = await client.delete(_path(program.id), headers=admin)
    assert removed.status_code == 204, removed.text
    assert await _stored(runtime, tenant) == []
    assert await _listed_logo(client, admin) is None
    assert (await client.get(f"/app/{tenant.slug}/logo")).status_code == 404
    assert (await client.delete(_path(program.id), headers=admin)).status_code == 204
    async with runtime.db.transaction(tenant.id) as session:
        entry = await session.scalar(
            select(ActivityLog).where(ActivityLog.action == "program.logo_removed")
        )
    assert entry is not None
    assert entry.before == {
        "content_type": "image/webp",
        "size": len(WEBP),
        "sha256": hashlib.sha256(WEBP).hexdigest(),
    }


async def test_the_guests_card_shows_the_logo(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    program = await make_program(runtime, tenant)
    app = f"/app/{tenant.slug}"
    await client.get(app)
    headers = {"X-CSRF-Token": str(client.cookies.get("csrf")), "HX-Request": "true"}
    consents = {"privacy_policy": "on", "personal_data": "on"}
    sent = await client.post(f"{app}/code", data={"phone": PHONE} | consents, headers=headers)
    assert sent.status_code == 200, sent.text
    verified = await client.post(
        f"{app}/verify", data={"phone": PHONE, "code": last_code(runtime)}, headers=headers
    )
    assert verified.headers["hx-redirect"] == app
    card = await client.get(app)
    assert 'class="loyalty-card' in card.text
    assert 'class="logo"' not in card.text

    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    assert (await _put(client, program.id, admin, "image/png", PNG)).status_code == 200
    card = await client.get(app)
    digest = hashlib.sha256(PNG).hexdigest()
    assert f'<img class="logo" src="{app}/logo?v={digest}" alt="">' in card.text
