"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from maxloyalty import __version__
from maxloyalty.config import Settings, get_settings
from maxloyalty.guests.endpoints import router as guests_router
from maxloyalty.guests.profile_endpoints import router as profile_router
from maxloyalty.guests.service.sign_in import use_tenant_bot_tokens
from maxloyalty.guests.sign_in_endpoints import router as guest_sign_in_router
from maxloyalty.health import router as health_router
from maxloyalty.identity.endpoints import router as auth_router
from maxloyalty.integrations.pos.admin_endpoints import router as pos_admin_router
from maxloyalty.integrations.pos.iiko.endpoints import router as iiko_router
from maxloyalty.integrations.pos.rkeeper.endpoints import router as rkeeper_router
from maxloyalty.integrations.pos.till_endpoints import router as pos_till_router
from maxloyalty.integrations.telegram.endpoints import router as telegram_router
from maxloyalty.integrations.telegram.service.bots import tenant_bot_token
from maxloyalty.integrations.webhooks.endpoints import router as webhooks_router
from maxloyalty.kit.errors import install_error_handlers
from maxloyalty.kit.logging import configure_logging
from maxloyalty.kit.middleware import RequestContextMiddleware
from maxloyalty.ledger.endpoints import router as ledger_router
from maxloyalty.loyalty.endpoints import router as loyalty_router
from maxloyalty.network.endpoints import platform_router
from maxloyalty.network.endpoints import router as network_router
from maxloyalty.network.staff_endpoints import router as staff_router
from maxloyalty.privacy.endpoints import router as me_router
from maxloyalty.rewards.endpoints import router as rewards_router
from maxloyalty.runtime import Runtime
from maxloyalty.web.router import install_pages
from maxloyalty.worker import run_worker

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_format, settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.start(settings)
        runtime.follow_changes()
        app.state.runtime = runtime
        stop = asyncio.Event()
        worker = (
            asyncio.create_task(run_worker(runtime, stop))
            if settings.run_worker_in_process
            else None
        )
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                await worker
            await runtime.close()

    # Swagger UI and ReDoc from the assets fastapi-offline ships, not from a CDN: back
    # offices of restaurants are often offline or filtered.
    app = FastAPIOffline(
        title="MaxLoyalty",
        version=__version__,
        summary="Loyalty platform for restaurant networks",
        docs_url="/api/docs",
        redoc_url="/api/redoc",
        static_url="/api/docs/static",
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    # Guests sit below integrations: the Mini App sign-in learns a network's own bot token
    # through this lookup.
    use_tenant_bot_tokens(tenant_bot_token)
    for router in (
        health_router,
        auth_router,
        guest_sign_in_router,
        me_router,
        profile_router,
        staff_router,
        network_router,
        loyalty_router,
        guests_router,
        ledger_router,
        rewards_router,
        webhooks_router,
        pos_admin_router,
        pos_till_router,
        rkeeper_router,
        iiko_router,
        telegram_router,
        platform_router,
    ):
        app.include_router(router)
    install_pages(app)
    return app
