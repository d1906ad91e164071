"""The pages through the application in-process: sessions, CSRF, the content policy, the
guest's SMS sign-in, and bad form input answered in plain words (never a 500)."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from sqlalchemy import select

from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.network.models import Tenant
from maxloyalty.network.service.staff import block_staff
from maxloyalty.runtime import Runtime
from tests.factories import (
    PASSWORD,
    make_guest,
    make_program,
    make_restaurant,
    make_staff,
    make_tenant,
)
from tests.guests.test_sign_in import PHONE, last_code

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
_INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
_STYLE_ATTRIBUTE = re.compile(r"\sstyle\s*=", re.IGNORECASE)


async def _csrf(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    token = client.cookies.get("csrf")
    assert token
    return token


async def _signed_in_cashier(client: httpx.AsyncClient, email: str) -> str:
    token = await _csrf(client, "/cashier")
    signed = await client.post(
        "/cashier/sign-in", data={"login": email, "password": PASSWORD, "csrf": token}
    )
    assert signed.status_code == 303, signed.text
    return token


async def test_every_page_answers_with_the_content_policy_and_no_inline_code(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    for path in ("/", "/cashier", f"/app/{tenant.slug}", "/static/css/app.css"):
        page = await client.get(path)
        assert page.status_code == 200, path
        policy = page.headers["content-security-policy"]
        assert "script-src 'self' https://telegram.org;" in policy
        assert "unsafe" not in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        if page.headers["content-type"].startswith("text/html"):
            assert _INLINE_SCRIPT.findall(page.text) == [], path
            assert _INLINE_HANDLER.findall(page.text) == [], path
            assert _STYLE_ATTRIBUTE.findall(page.text) == [], path
    api = await client.get("/api/docs")
    assert "content-security-policy" not in api.headers  # Swagger UI needs its inline code


async def test_a_network_that_does_not_exist_is_a_plain_404(client: httpx.AsyncClient) -> None:
    page = await client.get("/app/no-such-network", headers={"Accept-Language": "ru"})
    assert page.status_code == 404
    assert "Такой сети нет." in page.text


async def test_a_blocked_cashier_is_signed_out_of_the_page_at_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    await make_program(runtime, tenant)
    email = await make_staff(runtime, tenant, Role.CASHIER, (restaurant,))
    await _signed_in_cashier(client, email)
    cookie = client.cookies.get("session", path="/cashier")
    assert cookie
    assert 'id="identify"' in (await client.get("/cashier")).text

    async with runtime.db.transaction(tenant.id) as session:
        user = await session.scalar(select(User.id).where(User.role == Role.CASHIER))
        assert user is not None
        await block_staff(session, tenant.id, user, "left the company")
    page = await client.get("/cashier")
    assert 'id="identify"' not in page.text
    assert 'name="password"' in page.text
    # The dead cookie is dropped, not merely ignored.
    assert 'session=""' in page.headers["set-cookie"]


async def test_signing_out_ends_the_session_itself(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    email = await make_staff(runtime, tenant, Role.CASHIER, (restaurant,))
    token = await _signed_in_cashier(client, email)
    stolen = client.cookies.get("session", path="/cashier")
    out = await client.post("/cashier/sign-out", data={"csrf": token})
    assert out.status_code == 303
    client.cookies.set("session", str(stolen), path="/cashier")
    assert 'name="password"' in (await client.get("/cashier")).text


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"type": "SALE", "amount": "abc"}, "form_invalid"),
        ({"type": "SALE", "amount": "nan"}, "form_invalid"),
        ({"type": "SALE", "amount": "1e3"}, "form_invalid"),
        ({"type": "SALE"}, "form_invalid"),
        ({"type": "BOGUS", "amount": "100"}, "form_invalid"),
        ({"type": "REDEMPTION", "amount": "100", "points": "1.5"}, "form_invalid"),
        ({"type": "MANUAL", "points": "99999999999", "reason": "x"}, "form_invalid"),
        ({"type": "SALE", "amount": "100", "guest_id": "not-a-uuid"}, "form_invalid"),
        ({"type": "SALE", "amount": "100", "key": ""}, "idempotency_key_required"),
        ({"type": "SALE", "amount": "100", "key": "k" * 201}, "form_invalid"),
        ({"type": "SALE", "amount": "100", "guest_id": str(uuid.UUID(int=1))}, "card_not_found"),
        ({"type": "MANUAL", "points": "10", "reason": "a\x00b"}, "form_invalid"),
        ({"type": "SALE", "amount": "100", "restaurant_id": "nowhere"}, "form_invalid"),
        (
            {"type": "SALE", "amount": "100", "restaurant_id": str(uuid.UUID(int=2))},
            "restaurant_forbidden",
        ),
    ],
)
async def test_bad_operation_forms_are_answered_inline(
    client: httpx.AsyncClient, runtime: Runtime, form: dict[str, str], code: str
) -> None:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    system = await make_program(runtime, tenant)
    card = await make_guest(runtime, system)
    email = await make_staff(runtime, tenant, Role.CASHIER, (restaurant,))
    token = await _signed_in_cashier(client, email)
    body = {
        "guest_id": str(card.user_id),
        "key": uuid.uuid4().hex,
        "restaurant_id": str(restaurant.id),
    } | form
    answer = await client.post(
        "/cashier/operation", data=body, headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert 400 <= answer.status_code < 500, answer.text
    assert f'data-code="{code}"' in answer.text
    assert answer.headers["hx-retarget"] == "#notice"


async def test_a_guest_signs_in_by_phone_in_a_browser(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant: Tenant = await make_tenant(runtime)
    await make_program(runtime, tenant)
    app = f"/app/{tenant.slug}"
    token = await _csrf(client, app)
    headers = {"X-CSRF-Token": token, "HX-Request": "true", "Accept-Language": "ru"}

    refused = await client.post(f"{app}/code", data={"phone": PHONE}, headers=headers)
    assert refused.status_code == 422
    assert 'data-code="consent_required"' in refused.text

    consents = {"privacy_policy": "on", "personal_data": "on"}
    sent = await client.post(f"{app}/code", data={"phone": PHONE} | consents, headers=headers)
    assert sent.status_code == 200, sent.text
    assert 'name="code"' in sent.text

    wrong = await client.post(f"{app}/verify", data={"phone": PHONE, "code": "12"}, headers=headers)
    assert 'data-code="form_invalid"' in wrong.text
    verified = await client.post(
        f"{app}/verify", data={"phone": PHONE, "code": last_code(runtime)}, headers=headers
    )
    assert verified.headers["hx-redirect"] == app
    card = await client.get(app)
    assert 'class="loyalty-card' in card.text
    assert re.search(r"data-static-code>\d{6}<", card.text)
    # The session is this network's alone: its cookie's path is the network's address.
    assert client.cookies.get("session", path=app)
    other = await make_tenant(runtime)
    assert "loyalty-card" not in (await client.get(f"/app/{other.slug}")).text


async def test_the_platform_owner_has_no_desk_at_the_cashier_page(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    from maxloyalty.network.service.accounts import create_owner

    await create_owner(runtime, email="owner@example.com", password=PASSWORD, phone=None)
    token = await _csrf(client, "/cashier")
    refused = await client.post(
        "/cashier/sign-in",
        data={"login": "owner@example.com", "password": PASSWORD, "csrf": token},
    )
    assert refused.status_code == 403
    assert 'data-code="role_forbidden"' in refused.text
    assert "session" not in refused.cookies


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        ({"files": {"f": ("a.txt", b"x")}}, 415, "form_expected"),
        ({"content": b"{}", "headers": {"Content-Type": "application/json"}}, 415, "form_expected"),
        (
            {
                "content": b"login=" + b"x" * 20_000,
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            413,
            "form_too_large",
        ),
    ],
)
async def test_pages_take_small_plain_forms_only(
    client: httpx.AsyncClient, content: dict[str, object], status: int, code: str
) -> None:
    token = await _csrf(client, "/cashier")
    headers = {"X-CSRF-Token": token, **content.pop("headers", {})}  # type: ignore[dict-item]
    answer = await client.post("/cashier/sign-in", headers=headers, **content)  # type: ignore[arg-type]
    assert answer.status_code == status
    assert f'data-code="{code}"' in answer.text


async def test_staff_only_routes_and_bad_ids_get_plain_refusals(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    await make_program(runtime, tenant)
    email = await make_staff(runtime, tenant, Role.CASHIER, (restaurant,))
    token = await _csrf(client, "/cashier")
    anonymous = await client.get("/cashier/guests?q=x", headers={"HX-Request": "true"})
    assert 'data-code="not_authenticated"' in anonymous.text
    await _signed_in_cashier(client, email)
    headers = {"X-CSRF-Token": token, "HX-Request": "true"}
    search = await client.get("/cashier/guests?q=x", headers=headers)
    assert search.status_code == 403
    assert 'data-code="role_forbidden"' in search.text
    for path in (
        "/cashier/transactions/not-an-id/approve",
        f"/cashier/transactions/{uuid.uuid4()}/eat",
    ):
        answer = await client.post(path, headers=headers)
        assert answer.status_code in {403, 404}, path
        assert "data-code=" in answer.text


async def test_a_guest_sees_nothing_before_consenting(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    from tests.conftest import TELEGRAM_BOT_TOKEN
    from tests.identity.test_primitives import signed_init_data

    tenant = await make_tenant(runtime)
    await make_program(runtime, tenant)
    app = f"/app/{tenant.slug}"
    token = await _csrf(client, app)
    headers = {"X-CSRF-Token": token, "HX-Request": "true"}
    signed = await client.post(
        f"{app}/telegram",
        data={"init_data": signed_init_data(TELEGRAM_BOT_TOKEN, 5150)},
        headers=headers,
    )
    assert signed.status_code == 204, signed.text
    for path in ("/history", "/summary", "/rotating"):
        answer = await client.get(app + path, headers=headers)
        assert answer.status_code == 422, path
        assert 'data-code="consent_required"' in answer.text
    assert (await client.get(f"{app}/live")).status_code == 204
    assert 'action="/app/' in (await client.get(app)).text  # the consents form

    given = await client.post(
        f"{app}/consents", data={"privacy_policy": "on", "personal_data": "on"}, headers=headers
    )
    assert given.headers["hx-redirect"] == app
    assert (await client.get(f"{app}/history", headers=headers)).status_code == 200


async def test_over_https_the_cookies_are_secure_and_host_bound(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(runtime)
    restaurant = await make_restaurant(runtime, tenant)
    email = await make_staff(runtime, tenant, Role.CASHIER, (restaurant,))
    page = await client.get("https://testserver/cashier")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-csrf=")
    assert "Secure" in cookie
    assert "SameSite=none" in cookie
    assert "Path=/;" in cookie
    token = client.cookies["__Host-csrf"]
    signed = await client.post(
        "https://testserver/cashier/sign-in",
        data={"login": email, "password": PASSWORD, "csrf": token},
    )
    assert signed.status_code == 303, signed.text
    session = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("session="))
    assert "HttpOnly" in session
    assert "Secure" in session
    assert "Path=/cashier" in session
    # A token under the plain name (planted by a sibling site) counts for nothing.
    client.cookies.set("csrf", "planted")
    planted = await client.post(
        "https://testserver/cashier/sign-in",
        data={"login": email, "password": PASSWORD, "csrf": "planted"},
    )
    assert planted.status_code == 403
