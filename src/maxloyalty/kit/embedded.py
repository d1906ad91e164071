"""A private PostgreSQL from the `pgserver` wheel, for machines without a server."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

EMBEDDED_DATABASE = "maxloyalty"


def start_embedded_postgres(data_dir: Path, database: str = EMBEDDED_DATABASE) -> str:
    """Start (or reuse) the server in `data_dir/pg`; return an owner URL to `database`.

    The server stops when the process that started it exits; data stays on disk.
    """
    try:
        with warnings.catch_warnings():
            # platformdirs warns at pgserver's import when XDG_RUNTIME_DIR is unset (servers,
            # containers); its fallback directory serves as well, so a clean start stays quiet.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            from pgserver.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
            "pip install 'maxloyalty[embedded]' or point DATABASE_URL at a server"
        ) from exc

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
        raise ValueError(f"not a plain database name: {database!r}")
    pgdata = (data_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
    query = f"SELECT 1 FROM pg_database WHERE datname = '{database}';"  # noqa: S608 - checked
    exists = server.psql(query)
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return str(server.get_uri(database))


def resolve_owner_url(database_url: str | None, data_dir: Path) -> str:
    """`DATABASE_URL` if given, else the embedded server's; exported for child processes."""
    url = database_url or start_embedded_postgres(data_dir)
    os.environ["DATABASE_URL"] = url
    return url
