"""The admin's preview of the card: the guest's own page with sample figures, in the design
being edited, its colours in a stylesheet of their own (the pages allow no inline style)."""

from __future__ import annotations

import hashlib
import html
import re

import httpx
import pytest

from maxloyalty.identity.principal import Role
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_program, make_tenant
from tests.loyalty.test_logo import PNG
from tests.test_app import assert_problem
from tests.web.test_pages import _INLINE_HANDLER, _INLINE_SCRIPT, _STYLE_ATTRIBUTE

DESIGN = {"template": "bold", "background": "#123456", "foreground": "#fedcba", "accent": "#00ff7f"}
_STYLESHEET = re.compile(r'<link rel="stylesheet" href="([^"]+preview\.css[^"]*)">')


def _preview(program_id: object) -> str:
    return f"/api/loyalty/programs/{program_id}/preview"


async def _stylesheet(client: httpx.AsyncClient, page: httpx.Response) -> str:
    found = _STYLESHEET.search(page.text)
    assert found, page.text
    css = await client.get(html.unescape(found.group(1)))
    assert css.status_code == 200, css.text
    assert css.headers["content-type"].startswith("text/css")
    return css.text


async def test_the_preview_is_the_guests_card_in_the_design_being_edited(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime, name="Гриль Хаус")
    program = await make_program(runtime, tenant)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)

    page = await client.post(
        _preview(program.id), json=DESIGN, headers=admin | {"Accept-Language": "en"}
    )
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert 'class="loyalty-card template-bold"' in page.text
    assert "data-static-code>123456<" in page.text
    assert "Гриль Хаус" in page.text
    assert "<svg" in page.text  # the sample QR
    # The sample guest's level and the next one are the programme's own.
    assert '<span class="tag level">SILVER</span>' in page.text
    assert "To level GOLD" in page.text
    assert re.search(r"300 points expire on", page.text)
    css = await _stylesheet(client, page)
    assert "--card-bg:#123456" in css
    assert "--card-fg:#fedcba" in css
    assert "--accent:#00ff7f" in css
    # A picture of the card: no script of its own or anyone's, nothing inline, no cookie.
    policy = page.headers["content-security-policy"]
    assert "script-src 'none'" in policy
    assert "style-src 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "set-cookie" not in page.headers
    assert "telegram-web-app.js" not in page.text
    assert "/brand.css" not in page.text  # the stored design's sheet is not mixed in
    for pattern in (_INLINE_SCRIPT, _INLINE_HANDLER, _STYLE_ATTRIBUTE):
        assert pattern.findall(page.text) == []
    # Nothing was saved.
    listed = await client.get("/api/loyalty/programs", headers=admin)
    assert listed.json()["items"][0]["design"] == {}


async def test_without_a_body_the_stored_design_and_logo_are_previewed(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant = await make_tenant(runtime)
    program = await make_program(
        runtime, tenant, design={"template": "minimal", "background": "#abcdef"}
    )
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    page = await client.post(_preview(program.id), headers=admin)
    assert page.status_code == 200, page.text
    assert 'class="loyalty-card template-minimal"' in page.text
    assert 'class="logo"' not in page.text
    css = await _stylesheet(client, page)
    assert "--card-bg:#abcdef" in css
    assert "--accent:#1f6feb" in css  # the default where the stored design says nothing

    uploaded = await client.put(
        f"/api/loyalty/programs/{program.id}/logo",
        content=PNG,
        headers=admin | {"Content-Type": "image/png"},
    )
    assert uploaded.status_code == 200, uploaded.text
    page = await client.post(_preview(program.id), headers=admin)
    digest = hashlib.sha256(PNG).hexdigest()
    assert f'<img class="logo" src="/app/{tenant.slug}/logo?v={digest}" alt="">' in page.text


@pytest.mark.parametrize(
    "design",
    [
        {"background": "red"},
        {"accent": "#12345g"},
        {"template": "neon"},
        {"background": "#000000;}body{display:none"},
        {"colour": "#000000"},
    ],
)
async def test_an_invalid_design_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory, design: dict[str, str]
) -> None:
    tenant = await make_tenant(runtime)
    program = await make_program(runtime, tenant)
    admin = await auth(Role.RESTAURANT_ADMIN, tenant.id)
    assert_problem(
        await client.post(_preview(program.id), json=design, headers=admin),
        422,
        "validation_error",
    )
    # The stylesheet checks its colours as well: nothing but a hex colour reaches the CSS.
    css = await client.get(f"/app/{tenant.slug}/preview.css", params=design)
    assert css.status_code == 422
    assert 'data-code="validation_error"' in css.text


async def test_the_stylesheet_belongs_to_a_network(client: httpx.AsyncClient) -> None:
    answer = await client.get("/app/no-such-network/preview.css", params={"accent": "#000000"})
    assert answer.status_code == 404


async def test_only_the_networks_admin_previews(
    client: httpx.AsyncClient, runtime: Runtime, auth: TokenFactory
) -> None:
    tenant, other = await make_tenant(runtime), await make_tenant(runtime)
    program = await make_program(runtime, tenant)
    for role in (Role.MANAGER, Role.CASHIER):
        staff = await auth(role, tenant.id)
        refused = await client.post(_preview(program.id), json=DESIGN, headers=staff)
        assert_problem(refused, 403, "role_forbidden")
    assert_problem(await client.post(_preview(program.id)), 401, "not_authenticated")
    outsider = await auth(Role.RESTAURANT_ADMIN, other.id)
    assert_problem(
        await client.post(_preview(program.id), headers=outsider), 404, "program_not_found"
    )
