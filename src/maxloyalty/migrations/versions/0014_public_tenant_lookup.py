"""`public_tenant(slug)`: the few public facts of a network (id, name, slug, time zone) by
its slug, for the pages at `/app/<slug>` before anyone is signed in. The application role
sees `tenants` only for its own tenant (row-level security); this SECURITY DEFINER
function answers one row by an exact slug and nothing else, so the pages need not reach
for the platform's cross-tenant login.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 18:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

from maxloyalty.kit.db import APP_ROLE

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION public_tenant(wanted text)
        RETURNS TABLE (id uuid, name varchar, slug varchar, timezone varchar)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$ SELECT t.id, t.name, t.slug, t.timezone FROM tenants t WHERE t.slug = wanted $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION public_tenant(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION public_tenant(text) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION public_tenant(text)")
