"""Every page at phone and tablet sizes, in headless Chromium, into docs/screenshots/.

`make screenshots` starts its own server with the demo network (a fresh database
`maxloyalty_screenshots` on the server of DATABASE_URL, or the embedded PostgreSQL), signs
in as the demo's cashier, manager and a guest (the guest's SMS code is read from the
server's log: the development SMS provider writes it there), and pictures each page.
`--base URL --data-dir DIR` pictures a running `make run` instead."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
SIZES = {"phone": (390, 844), "tablet": (1024, 768)}
CHROMIUM = "/usr/bin/chromium"
# The browser's language (the pages follow Accept-Language) and where the pictures go.
CHOSEN = {"locale": "ru-RU", "out": OUT}
_CODE = re.compile(r"код входа (\d{6})")


def _fresh_database(url: str) -> str:
    target = make_url(url).set(database="maxloyalty_screenshots")
    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    for sql in (
        "DROP DATABASE IF EXISTS maxloyalty_screenshots",
        "CREATE DATABASE maxloyalty_screenshots",
    ):
        subprocess.run(["psql", admin, "-qc", sql], check=True)  # noqa: S603, S607
    return target.render_as_string(hide_password=False)


def _serve(data_dir: Path, log: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MAXLOYALTY_DATA_DIR": str(data_dir), "MAXLOYALTY_LOG_FORMAT": "json"}
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = _fresh_database(os.environ["DATABASE_URL"])
    env.pop("REDIS_URL", None)
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "maxloyalty", "serve", "--demo-once", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_ready(base: str, deadline: float = 240) -> None:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not become ready")


def _staff(tenant: dict[str, Any], role: str) -> dict[str, Any]:
    return next(s for s in tenant["staff"] if s["role"] == role)


async def _shoot(page: Page, name: str, size: str) -> None:
    await page.wait_for_timeout(300)  # htmx settles, fonts paint
    path = Path(CHOSEN["out"]) / f"{name}-{size}.png"
    # As tall as the page, so what sticks to the screen's bottom is drawn at the bottom.
    width, height = SIZES[size]
    tall = await page.evaluate("document.documentElement.scrollHeight")
    await page.set_viewport_size({"width": width, "height": max(height, tall)})
    await page.screenshot(path=str(path))
    await page.set_viewport_size({"width": width, "height": height})
    print(f"  {path}")


async def _cashier(browser: Browser, base: str, tenant: dict[str, Any], size: str) -> None:
    width, height = SIZES[size]
    context = await browser.new_context(
        viewport={"width": width, "height": height}, locale=CHOSEN["locale"]
    )
    page = await context.new_page()
    await page.goto(f"{base}/")
    await _shoot(page, "home", size)
    await page.goto(f"{base}/cashier")
    await _shoot(page, "cashier-sign-in", size)
    cashier = _staff(tenant, "CASHIER")
    await page.fill("input[name=login]", cashier["email"])
    await page.fill("input[name=password]", cashier["password"])
    await page.click("button[type=submit]")
    await page.wait_for_selector("#identify")
    await _shoot(page, "cashier-home", size)
    guest = max(tenant["guests"], key=lambda g: g["balance"])
    await page.fill("#query", guest["card_code"])
    await page.fill("input[name=check_amount]", "2450")
    await page.click("#identify button[type=submit]")
    await page.wait_for_selector(".guest-card")
    await _shoot(page, "cashier-guest", size)
    await page.click('[data-pane="sale"] button[type=submit]')
    await page.wait_for_selector("#result .notice-ok")
    await _shoot(page, "cashier-sale-posted", size)
    await context.close()

    context = await browser.new_context(
        viewport={"width": width, "height": height}, locale=CHOSEN["locale"]
    )
    page = await context.new_page()
    manager = _staff(tenant, "MANAGER")
    await page.goto(f"{base}/cashier")
    await page.fill("input[name=login]", manager["email"])
    await page.fill("input[name=password]", manager["password"])
    await page.click("button[type=submit]")
    await page.click('form[action="/cashier/place"] button[type=submit]')
    await page.wait_for_selector("#identify")
    await page.fill("input[name=q]", guest["card_code"])
    await page.wait_for_selector("#found button.found")
    await _shoot(page, "cashier-manager", size)
    await context.close()


async def _guest(
    browser: Browser, base: str, tenant: dict[str, Any], slug: str, size: str, log: Path
) -> None:
    width, height = SIZES[size]
    context = await browser.new_context(
        viewport={"width": width, "height": height}, locale=CHOSEN["locale"]
    )
    page = await context.new_page()
    await page.goto(f"{base}/app/{slug}")
    await _shoot(page, "guest-sign-in", size)
    # A guest per size: a phone may ask for a new code only once a minute.
    richest = sorted(tenant["guests"], key=lambda g: -g["balance"])
    guest = richest[list(SIZES).index(size) + int(time.time()) % 50]
    await page.fill("input[name=phone]", guest["phone"])
    await page.check("input[name=privacy_policy]")
    await page.check("input[name=personal_data]")
    await page.click("button[type=submit]")
    await page.wait_for_selector("input[name=code]")
    await _shoot(page, "guest-code", size)
    code = await _code_from(log)
    await page.fill("input[name=code]", code)
    await page.click("button[type=submit]")
    await page.wait_for_selector(".loyalty-card")
    await page.wait_for_selector("#rotating")
    await _shoot(page, "guest-card", size)
    await page.goto(f"{base}/app/{slug}/history")
    await page.wait_for_selector(".history")
    await _shoot(page, "guest-history", size)
    await page.goto(f"{base}/app/{slug}/rewards")
    await page.wait_for_selector(".rewards")
    await _shoot(page, "guest-rewards", size)
    await page.goto(f"{base}/app/{slug}/profile")
    await page.wait_for_selector("#children")
    await _shoot(page, "guest-profile", size)
    await page.goto(f"{base}/app/{slug}?lang=en")
    await page.wait_for_selector("#rotating")
    await _shoot(page, "guest-card-en", size)
    await context.close()


async def _code_from(log: Path) -> str:
    for _ in range(50):
        codes = _CODE.findall(await asyncio.to_thread(log.read_text, errors="replace"))
        if codes:
            return codes[-1]
        await asyncio.sleep(0.2)
    raise SystemExit(f"no SMS code in {log}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", help="a running server (with --data-dir and --log)")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--log", type=Path, help="its log, where the SMS codes are")
    parser.add_argument("--lang", choices=["ru", "en"], default="ru")
    parser.add_argument("--out", type=Path, default=OUT, help="where the pictures go")
    args = parser.parse_args()
    CHOSEN.update(locale="en-US" if args.lang == "en" else "ru-RU", out=args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    server = None
    with tempfile.TemporaryDirectory() as scratch:
        if args.base:
            base, data_dir, log = args.base, args.data_dir, args.log
        else:
            port = 8765
            base, data_dir, log = (
                f"http://127.0.0.1:{port}",
                Path(scratch),
                Path(scratch) / "serve.log",
            )
            server = _serve(data_dir, log, port)
        try:
            _wait_ready(base)
            demo = json.loads((data_dir / "demo.json").read_text())
            tenant = demo["tenants"][0]
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                for size in SIZES:
                    await _cashier(browser, base, tenant, size)
                    await _guest(browser, base, tenant, "grill-house", size, log)
                await browser.close()
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
