"""Page sessions: an HttpOnly cookie holding the session's refresh token, scoped by path
to one face (`/cashier`, or `/app/<network>` so each network keeps its own sign-in), and
resolved against its row on every request (`identity.service.sessions.resume`), in the
request's one unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from maxloyalty.identity.principal import Principal
from maxloyalty.identity.schemas import TokenPair
from maxloyalty.identity.service import sessions
from maxloyalty.kit import context
from maxloyalty.kit.db import unit_of_work
from maxloyalty.kit.errors import AppError
from maxloyalty.runtime import runtime_of
from maxloyalty.web.security import remember_cookie

SESSION_COOKIE = "session"


def keep_session(request: Request, pair: TokenPair, path: str) -> None:
    policy = runtime_of(request).sessions
    remember_cookie(
        request,
        SESSION_COOKIE,
        pair.refresh_token,
        path=path,
        max_age=int(policy.refresh_ttl.total_seconds()),
    )


def forget_session(request: Request, path: str) -> None:
    remember_cookie(request, SESSION_COOKIE, None, path=path, max_age=None)


async def holder(request: Request, session: AsyncSession, path: str) -> Principal | None:
    """Who holds this page's session (None: nobody, or a dead cookie, which is dropped);
    `session` is bound to them and their tenant from here on, so row-level security
    confines the page as it confines the API."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = await sessions.resume(session, runtime_of(request).sessions, token)
    except AppError:
        forget_session(request, path)
        return None
    context.actor.set(principal.actor)
    return principal


@asynccontextmanager
async def public_work(request: Request) -> AsyncIterator[AsyncSession]:
    async with runtime_of(request).db.session() as session, unit_of_work(session):
        yield session


async def sign_out(request: Request, path: str) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    forget_session(request, path)
    if not token:
        return
    runtime = runtime_of(request)
    try:
        async with public_work(request) as session:
            await sessions.logout(session, runtime.sessions, token)
    except AppError:
        return  # gone already: signed out either way
