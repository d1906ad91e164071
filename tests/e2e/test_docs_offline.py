"""The API docs work on a machine with no internet: real Chromium, every request that leaves
127.0.0.1 refused, and Swagger UI and ReDoc still show the operations."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Route

from maxloyalty.config import Settings
from tests.e2e.conftest import needs_chromium
from tests.live import served, server_env

pytestmark = [
    needs_chromium,
    pytest.mark.xdist_group("docs"),  # one server for the module, on one worker
]


@pytest.fixture(scope="module")
def live(migrated: str, settings: Settings) -> Iterator[str]:
    with served(server_env(settings, migrated)) as base:
        yield base


async def _offline_page(browser: Browser, refused: list[str]) -> Page:
    """A page whose every request to anywhere but 127.0.0.1 is refused, and noted."""
    page = await browser.new_page()

    async def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            refused.append(f"{route.request.resource_type} {route.request.url}")
            await route.abort("internetdisconnected")

    await page.route("**/*", only_local)
    return page


async def test_swagger_ui_lists_the_operations_offline(live: str, browser: Browser) -> None:
    refused: list[str] = []
    page = await _offline_page(browser, refused)
    await page.goto(f"{live}/api/docs")
    restaurants = page.locator(".opblock-summary-path", has_text="/api/restaurants").first
    await restaurants.wait_for(timeout=15_000)
    assert await page.locator(".opblock").count() > 40
    assert refused == []


async def test_redoc_lists_the_operations_offline(live: str, browser: Browser) -> None:
    refused: list[str] = []
    page = await _offline_page(browser, refused)
    await page.goto(f"{live}/api/redoc")
    await page.get_by_text("/api/restaurants").first.wait_for(state="attached", timeout=15_000)
    assert await page.locator("[data-section-id^='operation/']").count() > 40
    # ReDoc's bundle shows its maker's logo from their CDN; offline only that image is missing.
    assert refused == ["image https://cdn.redoc.ly/redoc/logo-mini.svg"]
