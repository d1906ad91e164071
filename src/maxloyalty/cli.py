"""The `maxloyalty` command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from maxloyalty import __version__
from maxloyalty.config import Settings, get_settings
from maxloyalty.kit.db import async_url, connections_per_process
from maxloyalty.kit.embedded import resolve_owner_url
from maxloyalty.kit.logging import configure_logging
from maxloyalty.kit.migrate import check_models, run_migrate

app = typer.Typer(
    help="MaxLoyalty: loyalty platform for restaurant networks.", no_args_is_help=True
)
T = TypeVar("T")


def _step(message: str, action: Callable[[], T]) -> T:
    """Run one long step, saying what it is doing and that it finished."""
    typer.echo(f"{message}…", err=True, nl=False)
    result = action()
    typer.echo(" done", err=True)
    return result


def _prepare(settings: Settings) -> str:
    """Start the database if it is embedded, and migrate it; return the owner URL."""
    where = "Connecting to PostgreSQL" if settings.database_url else "Starting embedded PostgreSQL"
    owner_url = _step(where, lambda: resolve_owner_url(settings.database_url, settings.data_dir))
    _step("Applying migrations", lambda: run_migrate(owner_url, settings))
    return owner_url


def pool_sizing_warning(
    *, pool_size: int, processes: int, worker: bool, max_connections: int, reserved: int
) -> str | None:
    """A warning if `processes` API processes could together ask for more connections than
    the server gives non-superusers, less a headroom (a tenth, at least 5) for whatever
    else connects: migrations, `maxloyalty worker` processes, psql, monitoring, backups."""
    each = connections_per_process(pool_size, worker=worker)
    demand = processes * each
    available = max_connections - reserved
    headroom = max(5, available // 10)
    if demand <= available - headroom:
        return None
    return (
        f"Warning: {processes} API process(es) × {each} connections"
        f" (2 × MAXLOYALTY_DB_POOL_SIZE={pool_size}, the platform pool"
        f"{', the job worker' if worker else ''}) = {demand}, but the server leaves"
        f" {available - headroom} (max_connections {max_connections} − {reserved} reserved"
        f" − {headroom} headroom): requests may get 503 database_busy; lower"
        " MAXLOYALTY_DB_POOL_SIZE or --workers, or raise max_connections."
    )


async def _connection_limits(owner_url: str) -> tuple[int, int]:
    """The server's max_connections, and how many of them only privileged roles may use."""
    engine = create_async_engine(async_url(owner_url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            limits = await conn.execute(
                text(
                    "SELECT current_setting('max_connections')::int,"
                    " current_setting('superuser_reserved_connections')::int"
                    # PostgreSQL 16 and later keep some more for pg_use_reserved_connections.
                    " + coalesce(current_setting('reserved_connections', true)::int, 0)"
                )
            )
            max_connections, reserved = limits.one()
    finally:
        await engine.dispose()
    return int(max_connections), int(reserved)


def check_pool_sizing(owner_url: str, pool_size: int, *, processes: int, worker: bool) -> None:
    """Say so (on stderr) if the pools could outgrow the server: asked once, at start."""
    max_connections, reserved = asyncio.run(_connection_limits(owner_url))
    warning = pool_sizing_warning(
        pool_size=pool_size,
        processes=processes,
        worker=worker,
        max_connections=max_connections,
        reserved=reserved,
    )
    if warning:
        typer.echo(warning, err=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"maxloyalty {__version__}")
        raise typer.Exit


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Run `maxloyalty COMMAND --help` for a command's options."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API processes.")] = 1,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the job worker in-process.")
    ] = True,
    demo_once: Annotated[
        bool, typer.Option("--demo-once", help="Load the demo network if the database is empty.")
    ] = False,
) -> None:
    """Migrate, then serve the API (and, unless told not to, the job worker)."""
    import uvicorn

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    owner_url = _prepare(settings)
    check_pool_sizing(owner_url, settings.db_pool_size, processes=workers, worker=worker)
    if demo_once:
        from maxloyalty.demo import load_demo

        summary = _step("Loading the demo network (first start only)", lambda: load_demo(settings))
        typer.echo(summary.message, err=True)
    # The app reads its settings from the environment, in child processes and (with one
    # worker) in this one too: drop the cached copy so the choice is seen.
    os.environ["MAXLOYALTY_RUN_WORKER_IN_PROCESS"] = "true" if worker else "false"
    get_settings.cache_clear()
    typer.echo(f"Serving on http://{host}:{port} (API docs at /api/docs)", err=True)
    if demo_once:
        from maxloyalty.demo import saved_demo, start_block

        data = saved_demo(settings)
        if data is not None:
            typer.echo(start_block(data, f"http://{host}:{port}"), err=True)
    # uvicorn re-raises the stop signal once it has shut down; a SIGTERM then would end the
    # process before exit handlers run, leaving the embedded PostgreSQL running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        "maxloyalty.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        proxy_headers=True,
        # Live pages hold their event streams open; a stop waits this long, then cuts them
        # (the browsers reconnect to another process).
        timeout_graceful_shutdown=10,
    )


@app.command("worker")
def worker_command() -> None:
    """Run the job worker only (any number of them may run side by side)."""
    from maxloyalty.runtime import Runtime
    from maxloyalty.worker import run_worker

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    _prepare(settings)

    async def main() -> None:
        runtime = Runtime.start(settings)
        runtime.follow_changes()
        try:
            await run_worker(runtime, asyncio.Event())
        finally:
            await runtime.close()

    typer.echo("Worker running; Ctrl+C stops it.", err=True)
    asyncio.run(main())


@app.command()
def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="Also verify that models and migrations agree.")
    ] = False,
) -> None:
    """Apply database migrations (as the owner in DATABASE_URL) and set the runtime logins."""
    settings = get_settings()
    owner_url = _prepare(settings)
    if check:
        _step("Comparing models with migrations", lambda: asyncio.run(check_models(owner_url)))


demo_app = typer.Typer(help="The demo network: build it, or show how to try it.")
app.add_typer(demo_app, name="demo")


@demo_app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what was created as JSON.")
    ] = False,
) -> None:
    """Build the demo network on an empty database."""
    if ctx.invoked_subcommand is not None:
        return
    from maxloyalty.demo import load_demo

    settings = get_settings()
    _prepare(settings)
    summary = load_demo(settings)
    if as_json:
        typer.echo(json.dumps(summary.data, indent=2, ensure_ascii=False))
    else:
        from maxloyalty.demo import start_block

        typer.echo(summary.message)
        if summary.data:
            typer.echo(start_block(summary.data, settings.public_url))


@demo_app.command("show")
def demo_show(
    url: Annotated[str, typer.Option(help="Where the server answers.")] = "http://127.0.0.1:8000",
) -> None:
    """Print the demo's start block again: logins, ids, guest codes, a till key, curl lines."""
    from maxloyalty.demo import saved_demo, start_block

    data = saved_demo(get_settings())
    if data is None:
        typer.echo("No demo here yet: run `maxloyalty demo` (or `make run`).", err=True)
        raise typer.Exit(1)
    typer.echo(start_block(data, url))


ledger_app = typer.Typer(help="Check the points ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("verify")
def ledger_verify(
    tenant: Annotated[str | None, typer.Option(help="Tenant slug or id (default: all).")] = None,
) -> None:
    """Check balance == completed transactions == active lots for every card; exit 1 on
    any mismatch."""
    from maxloyalty.ledger.service.verify import verify_all
    from maxloyalty.runtime import Runtime

    settings = get_settings()
    _prepare(settings)

    async def run() -> int:
        runtime = Runtime.start(settings)
        try:
            problems = 0
            async for name, checked, mismatches in verify_all(runtime.db, tenant):
                typer.echo(f"{name}: {checked} cards, {len(mismatches)} mismatches")
                for m in mismatches:
                    typer.echo(f"  card {m.card_id}: {m.detail}")
                problems += len(mismatches)
            return problems
        finally:
            await runtime.close()

    if asyncio.run(run()):
        raise typer.Exit(code=1)


pii_app = typer.Typer(help="Personal data at rest.", no_args_is_help=True)
app.add_typer(pii_app, name="pii")


@pii_app.command("reencrypt")
def pii_reencrypt() -> None:
    """Rewrite every encrypted value under the current PII key (after a key change)."""
    from maxloyalty.privacy.service.key_rotation import reencrypt
    from maxloyalty.runtime import Runtime

    settings = get_settings()
    _prepare(settings)

    async def run() -> int:
        runtime = Runtime.start(settings)
        try:
            return await reencrypt(runtime.db)
        finally:
            await runtime.close()

    typer.echo(f"Re-encrypted {asyncio.run(run())} rows under the current key.")


telegram_app = typer.Typer(help="Each network's own Telegram bot.", no_args_is_help=True)
app.add_typer(telegram_app, name="telegram")


@telegram_app.command("poll")
def telegram_poll(
    tenant: Annotated[str, typer.Option(help="Tenant slug.")],
) -> None:
    """Fetch the network's bot updates by long polling (development: Telegram cannot reach a
    webhook on this machine). Deletes the bot's webhook first; Ctrl+C stops."""
    from maxloyalty.integrations.telegram.service.updates import poll
    from maxloyalty.kit.errors import AppError
    from maxloyalty.runtime import Runtime

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    _prepare(settings)

    async def run() -> None:
        runtime = Runtime.start(settings)
        try:
            await poll(runtime, tenant)
        finally:
            await runtime.close()

    typer.echo(f"Polling the Telegram bot of {tenant}; Ctrl+C stops.", err=True)
    try:
        asyncio.run(run())
    except AppError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    except KeyboardInterrupt:
        pass


user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("create")
def user_create(
    role: Annotated[str, typer.Option(help="OWNER, RESTAURANT_ADMIN, MANAGER or CASHIER.")],
    email: Annotated[str | None, typer.Option(help="Login email.")] = None,
    phone: Annotated[
        str | None, typer.Option(help="Login phone (E.164 or Russian format).")
    ] = None,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
    tenant: Annotated[str | None, typer.Option(help="Tenant slug (every role but OWNER).")] = None,
    restaurant: Annotated[
        list[str] | None, typer.Option(help="Restaurant id (repeat for several).")
    ] = None,
) -> None:
    """Create a platform owner, or a staff member of a tenant."""
    import uuid

    from pydantic import ValidationError

    from maxloyalty.identity.principal import Role
    from maxloyalty.kit.errors import AppError
    from maxloyalty.network.service import accounts
    from maxloyalty.runtime import Runtime

    try:
        chosen = Role(role.upper())
        restaurant_ids = [uuid.UUID(r) for r in restaurant or []]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if chosen is Role.OWNER and not email:
        raise typer.BadParameter("an OWNER needs --email")
    if chosen is not Role.OWNER and not tenant:
        raise typer.BadParameter(f"a {chosen.value} needs --tenant")
    settings = get_settings()
    _prepare(settings)

    async def run() -> uuid.UUID:
        runtime = Runtime.start(settings)
        try:
            if chosen is Role.OWNER:
                assert email is not None
                return await accounts.create_owner(
                    runtime, email=email, password=password, phone=phone
                )
            assert tenant is not None
            return await accounts.create_tenant_staff(
                runtime,
                tenant_slug=tenant,
                email=email,
                phone=phone,
                password=password,
                role=chosen,
                restaurant_ids=restaurant_ids,
            )
        finally:
            await runtime.close()

    try:
        user_id = asyncio.run(run())
    except (AppError, ValidationError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"Created {chosen.value} {email or phone} (user id {user_id}).")


def main() -> None:
    app()
