"""The guest cabinet and the cashier page, end to end: two server processes sharing Redis
(the cashier on one, the guest on the other, as behind a balancer), real Chromium, real
PostgreSQL. Telegram's own script is not reachable here; the tests give the page a
`window.Telegram.WebApp` of their own, with initData signed by the server's bot token."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright, expect
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.config import Settings
from maxloyalty.guests.models import GuestCard
from maxloyalty.identity.principal import Role
from maxloyalty.ledger.models import PointTransaction, TxType
from maxloyalty.network.models import Restaurant, Tenant
from maxloyalty.runtime import Runtime
from tests.conftest import TELEGRAM_BOT_TOKEN
from tests.e2e.camera import qr_clip
from tests.e2e.conftest import CHROMIUM, needs_chromium
from tests.factories import PASSWORD, make_program, make_restaurant, make_staff, make_tenant
from tests.identity.test_primitives import signed_init_data
from tests.live import served, server_env

pytestmark = [needs_chromium, pytest.mark.xdist_group("faces")]


@dataclass(frozen=True)
class Servers:
    cashier: str  # the process the cashier's tablet talks to
    guest: str  # another one, where the guest's phone is connected


@pytest.fixture(scope="module")
def servers(migrated: str, settings: Settings) -> Iterator[Servers]:
    redis_url = settings.redis_url or "redis://127.0.0.1:6379/0"
    env = server_env(settings, migrated) | {
        "REDIS_URL": redis_url,
        "MAXLOYALTY_REDIS_KEY_PREFIX": f"e2e{uuid.uuid4().hex[:8]}",
    }
    with served(env) as one, served(env) as other:
        yield Servers(cashier=one, guest=other)


@dataclass
class Network:
    tenant: Tenant
    restaurant: Restaurant
    cashier: str
    manager: str


async def _network(runtime: Runtime, **program: object) -> Network:
    tenant = await make_tenant(runtime, timezone="Europe/Moscow")
    restaurant = await make_restaurant(runtime, tenant, "Тверская")
    await make_program(runtime, tenant, pending_days=0, max_redeem_percent=50, **program)
    return Network(
        tenant,
        restaurant,
        await make_staff(runtime, tenant, Role.CASHIER, (restaurant,)),
        await make_staff(runtime, tenant, Role.MANAGER, (restaurant,)),
    )


# What the page uses of Telegram's WebApp object; haptics are noted for the assertions.
_WEB_APP = """
window.__haptics = [];
window.Telegram = {WebApp: {
  initData: window.__initData, colorScheme: "light", ready() {}, expand() {},
  BackButton: {show() {}, hide() {}, onClick() {}},
  MainButton: {setText() {}, show() {}, onClick() {}},
  HapticFeedback: {notificationOccurred(kind) { window.__haptics.push(kind); }},
}};
"""


async def _in_telegram(browser: Browser, telegram_id: int, locale: str = "ru-RU") -> Page:
    """A phone in Telegram: the WebApp object Telegram's script would make, and that
    script's address refused (the page must not depend on it)."""
    context: BrowserContext = await browser.new_context(
        viewport={"width": 390, "height": 844}, locale=locale
    )

    async def offline(route: Route) -> None:
        await route.abort("internetdisconnected")

    await context.route("https://telegram.org/**", offline)
    init_data = json.dumps(signed_init_data(TELEGRAM_BOT_TOKEN, telegram_id))
    await context.add_init_script(f"window.__initData = {init_data};" + _WEB_APP)
    return await context.new_page()


async def _guest_card(browser: Browser, base: str, tenant: Tenant, telegram_id: int) -> Page:
    """The guest opens the Mini App: signed in with no typing, consents once, the card."""
    page = await _in_telegram(browser, telegram_id)
    await page.goto(f"{base}/app/{tenant.slug}")
    # The sign-in page (with its own consent boxes, for SMS) gives way to the consents.
    consents = page.locator('form[action$="/consents"]')
    await consents.locator("input[name=privacy_policy]").check()
    await consents.locator("input[name=personal_data]").check()
    await consents.locator("button[type=submit]").click()
    await expect(page.locator(".loyalty-card")).to_be_visible()
    return page


async def _cashier(browser: Browser, base: str, email: str, locale: str = "ru-RU") -> Page:
    context = await browser.new_context(viewport={"width": 1024, "height": 768}, locale=locale)
    page = await context.new_page()
    await page.goto(f"{base}/cashier")
    await page.fill("input[name=login]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("#identify")).to_be_visible()
    return page


async def _identify(page: Page, query: str, check_amount: str = "") -> None:
    await page.fill("#query", query)
    await page.fill("#identify input[name=check_amount]", check_amount)
    await page.click("#identify button[type=submit]")


async def _postings(runtime: Runtime, tenant: Tenant, kind: TxType) -> int:
    async with runtime.db.transaction(tenant.id) as session:
        count = await session.scalar(
            select(func.count()).select_from(PointTransaction).where(PointTransaction.type == kind)
        )
    return int(count or 0)


async def test_a_sale_at_the_till_shows_on_the_guests_open_card_without_reload(
    servers: Servers, browser: Browser, runtime: Runtime
) -> None:
    net = await _network(runtime)
    guest = await _guest_card(browser, servers.guest, net.tenant, telegram_id=7001)
    code = (await guest.locator("[data-static-code]").inner_text()).strip()
    assert len(code) == 6
    assert code.isdigit()
    await expect(guest.locator("#summary .balance")).to_have_text("0")
    await expect(guest.locator("[data-rotating-code]")).to_have_text(re.compile(r"^\d{6}$"))

    till = await _cashier(browser, servers.cashier, net.cashier)
    await _identify(till, code)
    await expect(till.locator(".guest-card .code")).to_have_text(code)
    await till.fill('[data-pane="sale"] input[name=amount]', "1 000")
    await till.dblclick('[data-pane="sale"] button[type=submit]')
    await expect(till.locator("#result .notice-ok")).to_be_visible()
    # Bronze earns 5 %: 1 000 ₽ is 50 points, posted once however often it was clicked.
    await expect(till.locator("#result [data-balance]")).to_have_attribute("data-balance", "50")
    assert await _postings(runtime, net.tenant, TxType.ACCRUAL) == 1

    await expect(guest.locator("#summary .balance")).to_have_text("50", timeout=3000)
    assert await guest.evaluate("window.__haptics") == ["success"]
    assert await _postings(runtime, net.tenant, TxType.ACCRUAL) == 1


async def test_the_same_form_sent_again_posts_nothing_more(
    servers: Servers, browser: Browser, runtime: Runtime
) -> None:
    """A reload or a flaky Wi-Fi resends the form as it was drawn: same key, one posting."""
    net = await _network(runtime)
    guest = await _guest_card(browser, servers.guest, net.tenant, telegram_id=7002)
    code = (await guest.locator("[data-static-code]").inner_text()).strip()
    till = await _cashier(browser, servers.cashier, net.cashier)
    await _identify(till, code)
    form = till.locator('[data-pane="sale"]')
    await form.locator("input[name=amount]").fill("500")
    # The request as the browser sends it, kept to be sent again as a flaky network would.
    sent = await till.evaluate(
        """() => new URLSearchParams(
            new FormData(document.querySelector('[data-pane="sale"]'))).toString()"""
    )
    await form.locator("button[type=submit]").click()
    await expect(till.locator("#result .notice-ok")).to_be_visible()
    resent = await till.evaluate(
        """async (body) => {
            const token = document.querySelector('meta[name=csrf-token]').content;
            const r = await fetch('/cashier/operation', {
                method: 'POST', body: new URLSearchParams(body),
                headers: {'X-CSRF-Token': token, 'HX-Request': 'true'}});
            return [r.status, await r.text()];
        }""",
        sent,
    )
    assert resent[0] == 200
    assert 'data-balance="25"' in resent[1]
    assert "уже проведено, показано повторно" in resent[1]
    assert await _postings(runtime, net.tenant, TxType.ACCRUAL) == 1

    # The next check on this guest is a new operation: the form was given a new key.
    await form.locator("input[name=amount]").fill("300")
    await form.locator("button[type=submit]").click()
    await expect(till.locator("#result [data-balance]")).to_have_attribute("data-balance", "40")
    assert await _postings(runtime, net.tenant, TxType.ACCRUAL) == 2


async def test_a_rotating_code_works_in_its_minute_and_not_after(
    servers: Servers, browser: Browser, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    net = await _network(runtime)
    guest = await _guest_card(browser, servers.guest, net.tenant, telegram_id=7003)
    rotating = guest.locator("[data-rotating-code]")
    await expect(rotating).to_have_text(re.compile(r"^\d{6}$"))
    code = (await rotating.inner_text()).strip()

    till = await _cashier(browser, servers.cashier, net.cashier)
    await _identify(till, code)
    await expect(till.locator(".guest-card")).to_be_visible()

    # The minute passes (the code's row now belongs to a window gone by).
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE card_rotating_codes SET time_window = time_window - 2,"
                " expires_at = expires_at - interval '2 minutes'"
            )
        )
    await till.keyboard.press("Escape")
    await _identify(till, code)
    await expect(till.locator("#notice [data-code=card_not_found]")).to_contain_text(
        "Карты с таким кодом нет"
    )
    await expect(till.locator(".guest-card")).to_have_count(0)


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("ru-RU", "Это больше баллов, чем можно списать на этот чек."),
        ("en-US", "That is more points than this check may take."),
    ],
)
async def test_a_redemption_above_the_limit_is_refused_in_plain_words(
    servers: Servers, browser: Browser, runtime: Runtime, locale: str, words: str
) -> None:
    net = await _network(runtime)
    guest = await _guest_card(browser, servers.guest, net.tenant, telegram_id=7100 + len(locale))
    code = (await guest.locator("[data-static-code]").inner_text()).strip()
    till = await _cashier(browser, servers.cashier, net.cashier, locale)
    await _identify(till, code)
    await till.fill('[data-pane="sale"] input[name=amount]', "4000")
    await till.click('[data-pane="sale"] button[type=submit]')
    await expect(till.locator("#result [data-balance]")).to_have_attribute("data-balance", "200")

    # A 300 ₽ check may take half of it: 150 points, not 200.
    await till.keyboard.press("Escape")
    await _identify(till, code, check_amount="300")
    await expect(till.locator(".guest-card")).to_contain_text("150")
    await till.click('[data-tab="redeem"]')
    pane = till.locator('[data-pane="redeem"]')
    await expect(pane.locator("input[name=points]")).to_have_value("150")
    await pane.locator("input[name=points]").fill("200")
    await pane.locator("button[type=submit]").click()
    await expect(till.locator("#notice [data-code=redemption_limit_exceeded]")).to_have_text(words)
    assert await _postings(runtime, net.tenant, TxType.REDEMPTION) == 0


async def test_a_form_without_its_token_or_from_another_site_is_refused(
    servers: Servers, runtime: Runtime
) -> None:
    net = await _network(runtime)
    async with httpx.AsyncClient(base_url=servers.cashier) as client:
        page = await client.get("/cashier")
        token = page.cookies["csrf"]
        form = {"login": net.cashier, "password": PASSWORD}
        bare = await client.post("/cashier/sign-in", data=form)
        assert bare.status_code == 403
        assert 'data-code="csrf_failed"' in bare.text
        assert "session" not in bare.cookies
        foreign = await client.post(
            "/cashier/sign-in",
            data=form | {"csrf": token},
            headers={"Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403
        signed = await client.post("/cashier/sign-in", data=form | {"csrf": token})
        assert signed.status_code == 303
        assert signed.cookies["session"]


async def test_a_guest_of_one_network_is_a_stranger_in_another(
    servers: Servers, browser: Browser, runtime: Runtime
) -> None:
    ours = await _network(runtime)
    theirs = await _network(runtime)
    guest = await _guest_card(browser, servers.guest, ours.tenant, telegram_id=7200)
    code = (await guest.locator("[data-static-code]").inner_text()).strip()

    # The session cookie is the network's own: the other network's cabinet asks to sign in.
    await guest.context.route("**/app/*/telegram", lambda route: route.abort())
    await guest.goto(f"{servers.guest}/app/{theirs.tenant.slug}")
    await expect(guest.locator("input[name=phone]")).to_be_visible()
    await expect(guest.locator(".loyalty-card")).to_have_count(0)

    # Their cashier cannot find our guest's card.
    till = await _cashier(browser, servers.cashier, theirs.cashier)
    await _identify(till, code)
    await expect(till.locator("#notice [data-code=card_not_found]")).to_be_visible()


async def test_the_cabinet_speaks_english_when_asked_and_remembers_it(
    servers: Servers, browser: Browser, runtime: Runtime
) -> None:
    net = await _network(runtime)
    guest = await _guest_card(browser, servers.guest, net.tenant, telegram_id=7300)
    await expect(guest.locator("#summary")).to_contain_text("Баланс")
    await guest.click("nav.lang a:has-text('EN')")
    await expect(guest.locator("#summary")).to_contain_text("Balance")
    await guest.goto(f"{servers.guest}/app/{net.tenant.slug}/history")
    await expect(guest.locator("h1")).to_have_text("History")


async def test_the_cashier_scans_the_guests_qr_with_the_tablets_camera(
    servers: Servers, browser: Browser, runtime: Runtime, tmp_path: Path
) -> None:
    net = await _network(runtime)
    guest = await _guest_card(browser, servers.guest, net.tenant, telegram_id=7400)
    code = (await guest.locator("[data-static-code]").inner_text()).strip()
    async with runtime.db.transaction(net.tenant.id) as session:
        card_id = await session.scalar(select(GuestCard.id).where(GuestCard.code == code))
    assert card_id is not None
    clip = qr_clip(runtime.qr.payload(net.tenant.id, card_id), tmp_path / "card.y4m")

    async with async_playwright() as p:
        filming = await p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={clip}",
            ],
        )
        try:
            till = await _cashier(filming, servers.cashier, net.cashier)
            await till.click("#scan")
            await expect(till.locator(".guest-card .code")).to_have_text(code, timeout=20_000)
            await expect(till.locator("#camera")).to_be_hidden()
        finally:
            await filming.close()
