"""Every face's routes, the static assets and the security headers, mounted on the app."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from maxloyalty.web import (
    branding,
    cashier,
    guest,
    guest_account,
    guest_rewards,
    guest_transfers,
)
from maxloyalty.web.pages import PageRoute
from maxloyalty.web.security import PageSecurityHeaders
from maxloyalty.web.templating import render

_STATIC = Path(__file__).parent / "static"
_home = APIRouter(route_class=PageRoute, include_in_schema=False)


@_home.get("/")
async def home(request: Request) -> Response:
    return render(request, "home.html")


def install_pages(app: FastAPI) -> None:
    app.add_middleware(PageSecurityHeaders)
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")
    for router in (
        _home,
        cashier.router,
        guest.router,
        guest_account.router,
        guest_rewards.router,
        guest_transfers.router,
        branding.router,
        branding.api,
    ):
        app.include_router(router)
