"""SQL that migrations repeat: roles, grants and row-level security policies."""

from __future__ import annotations

from pathlib import Path

from alembic import op
from sqlalchemy.util import await_only

from maxloyalty.kit.db import APP_ROLE, PLATFORM_ROLE

# Tenant of the current transaction; NULL (so no rows match) when none was set.
CURRENT_TENANT = "nullif(current_setting('app.tenant_id', true), '')::uuid"
# The authenticated user of the current transaction, for a user's own identity rows.
CURRENT_USER = "nullif(current_setting('app.user_id', true), '')::uuid"


def create_runtime_roles() -> None:
    """The roles the app logs in as; `maxloyalty migrate` sets their passwords."""
    for role in (APP_ROLE, PLATFORM_ROLE):
        op.execute(
            f"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
              END IF;
            END $$
            """
        )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}, {PLATFORM_ROLE}")


def tenant_table(table: str, app_privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> None:
    """Grant the app role `app_privileges` on `table`, confined to the current tenant's
    rows; the platform role may read every tenant's rows."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} TO {APP_ROLE} "
        f"USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT})"
    )
    op.execute(f"CREATE POLICY platform_read ON {table} FOR SELECT TO {PLATFORM_ROLE} USING (true)")
    op.execute(f"GRANT {app_privileges} ON {table} TO {APP_ROLE}")
    op.execute(f"GRANT SELECT ON {table} TO {PLATFORM_ROLE}")


def run_sql_file(name: str) -> None:
    """Run a file of several statements. asyncpg prepares what SQLAlchemy sends, and a
    prepared statement holds one command, so the file goes through the simple protocol."""
    raw = op.get_bind().connection.driver_connection
    assert raw is not None
    await_only(raw.execute((Path(__file__).parent / "sql" / name).read_text()))
