"""`public_tenant(slug)`: the few public facts of a network (id, name, slug, time zone) by
its slug, for the pages at `/app/<slug>` before anyone is signed in; `person_networks()`:
the same of every network where the person the transaction is bound to (`app.user_id`)
is an active guest, for a guest of several chains to choose among. The application role
sees `tenants` only for its own tenant (row-level security); these SECURITY DEFINER
functions answer those rows and nothing else, so the pages need not reach for the
platform's cross-tenant login.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 18:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

from maxloyalty.kit.db import APP_ROLE
from maxloyalty.migrations.helpers import CURRENT_USER

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION public_tenant(wanted text)
        RETURNS TABLE (id uuid, name varchar, slug varchar, timezone varchar)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        AS $$
          SELECT t.id, t.name, t.slug, t.timezone FROM public.tenants t WHERE t.slug = wanted
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION person_networks()
        RETURNS TABLE (id uuid, name varchar, slug varchar, timezone varchar)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        AS $$
          SELECT t.id, t.name, t.slug, t.timezone
            FROM public.tenants t JOIN public.user_roles r ON r.tenant_id = t.id
           WHERE r.user_id = {CURRENT_USER} AND r.role = 'GUEST' AND r.is_active
           ORDER BY t.name
        $$
        """
    )
    for function in ("public_tenant(text)", "person_networks()"):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION person_networks()")
    op.execute("DROP FUNCTION public_tenant(text)")
