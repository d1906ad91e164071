"""Foundation: tenants, restaurants, points of sale, activity log, outbox, job queue.

Row-level security confines the app role to the tenant of the transaction; the
platform role reads across tenants; the activity log is append-only for both.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 22:45:31.737519
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from maxloyalty.kit.db import APP_ROLE, PLATFORM_ROLE
from maxloyalty.migrations.helpers import (
    CURRENT_TENANT,
    create_runtime_roles,
    run_sql_file,
    tenant_table,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_runtime_roles()
    op.create_table(
        "activity_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_role", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("ip", postgresql.INET(), nullable=True),
        sa.Column("user_agent", sa.String(length=500), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", "created_at", name=op.f("pk_activity_log")),
        postgresql_partition_by="RANGE (created_at)",
    )
    op.create_index(
        "ix_activity_log_entity", "activity_log", ["entity_type", "entity_id"], unique=False
    )
    op.create_index(
        "ix_activity_log_tenant_id_created_at",
        "activity_log",
        ["tenant_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "tenants",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("organization_type", sa.String(length=32), nullable=False),
        sa.Column(
            "subscription_status",
            sa.Enum(
                "TRIAL",
                "ACTIVE",
                "SUSPENDED",
                "CANCELLED",
                name="subscription_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("max_restaurants", sa.Integer(), nullable=True),
        sa.Column("max_guests", sa.Integer(), nullable=True),
        sa.Column("features", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("settings", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("logo_url", sa.String(length=500), nullable=True),
        sa.Column("primary_color", sa.String(length=7), nullable=True),
        sa.Column("secondary_color", sa.String(length=7), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("slug", name=op.f("uq_tenants_slug")),
    )
    op.create_table(
        "integration_events",
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "status",
            sa.Enum("PENDING", "DELIVERED", name="event_status", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_integration_events_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_events")),
    )
    op.create_index(
        "ix_integration_events_pending",
        "integration_events",
        ["created_at"],
        unique=False,
        postgresql_where="status = 'PENDING'",
    )
    op.create_index(
        op.f("ix_integration_events_tenant_id"), "integration_events", ["tenant_id"], unique=False
    )
    op.create_table(
        "restaurants",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("city", sa.String(length=120), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "ACTIVE", "PAUSED", "CLOSED", name="restaurant_status", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_restaurants_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restaurants")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_restaurants_tenant_id_id")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_restaurants_tenant_id_name")),
    )
    op.create_index(op.f("ix_restaurants_tenant_id"), "restaurants", ["tenant_id"], unique=False)
    op.create_table(
        "points_of_sale",
        sa.Column("restaurant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("external_id", sa.String(length=120), nullable=True),
        sa.Column(
            "status",
            sa.Enum("ACTIVE", "DISABLED", name="pos_status", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_points_of_sale_name_not_empty")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "restaurant_id"],
            ["restaurants.tenant_id", "restaurants.id"],
            name="fk_points_of_sale_restaurant",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_points_of_sale_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_of_sale")),
        sa.UniqueConstraint(
            "restaurant_id", "name", name=op.f("uq_points_of_sale_restaurant_id_name")
        ),
    )
    op.create_index(
        op.f("ix_points_of_sale_restaurant_id"), "points_of_sale", ["restaurant_id"], unique=False
    )
    op.create_index(
        op.f("ix_points_of_sale_tenant_id"), "points_of_sale", ["tenant_id"], unique=False
    )

    # Tenants: each tenant sees its own row; the platform owner manages all of them.
    op.execute("ALTER TABLE tenants ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_self ON tenants FOR SELECT TO {APP_ROLE} USING (id = {CURRENT_TENANT})"
    )
    op.execute(
        f"CREATE POLICY tenant_self_update ON tenants FOR UPDATE TO {APP_ROLE} USING (id = {CURRENT_TENANT}) WITH CHECK (id = {CURRENT_TENANT})"
    )
    op.execute(
        f"CREATE POLICY platform_manage ON tenants TO {PLATFORM_ROLE} USING (true) WITH CHECK (true)"
    )
    op.execute(f"GRANT SELECT, UPDATE ON tenants TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON tenants TO {PLATFORM_ROLE}")

    for table in ("restaurants", "points_of_sale", "integration_events"):
        tenant_table(table)

    # Activity log: append-only. Rows without a tenant are platform actions.
    op.execute("ALTER TABLE activity_log ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_read ON activity_log FOR SELECT TO {APP_ROLE} USING (tenant_id = {CURRENT_TENANT})"
    )
    op.execute(
        f"CREATE POLICY tenant_append ON activity_log FOR INSERT TO {APP_ROLE} WITH CHECK (tenant_id IS NOT DISTINCT FROM {CURRENT_TENANT})"
    )
    op.execute(
        f"CREATE POLICY platform_read ON activity_log FOR SELECT TO {PLATFORM_ROLE} USING (true)"
    )
    op.execute(
        f"CREATE POLICY platform_append ON activity_log FOR INSERT TO {PLATFORM_ROLE} WITH CHECK (true)"
    )
    op.execute(f"GRANT SELECT, INSERT ON activity_log TO {APP_ROLE}, {PLATFORM_ROLE}")

    # Monthly partitions are DDL, which only the owner may run: a definer function lets the
    # app's periodic job create them for any range-partitioned table of ours, nothing else.
    op.execute("""
        CREATE FUNCTION maxloyalty_ensure_partitions(months_ahead integer) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE
          parent record;
          month_start timestamptz;
          partition_name text;
          created integer := 0;
        BEGIN
          IF months_ahead < 0 OR months_ahead > 24 THEN
            RAISE EXCEPTION 'months_ahead out of range: %', months_ahead;
          END IF;
          FOR parent IN
            SELECT c.relname FROM pg_partitioned_table p
            JOIN pg_class c ON c.oid = p.partrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND p.partstrat = 'r'
          LOOP
            FOR i IN -1..months_ahead LOOP
              month_start := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                             + make_interval(months => i);
              partition_name := parent.relname || '_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
              IF to_regclass(partition_name) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               partition_name, parent.relname, month_start,
                               month_start + interval '1 month');
                EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', partition_name);
                created := created + 1;
              END IF;
            END LOOP;
          END LOOP;
          RETURN created;
        END $$
    """)
    op.execute("REVOKE ALL ON FUNCTION maxloyalty_ensure_partitions(integer) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION maxloyalty_ensure_partitions(integer) TO {APP_ROLE}")
    op.execute("SELECT maxloyalty_ensure_partitions(3)")

    # The job queue (PgQueuer 1.6 schema, frozen here so upgrades of the library are explicit).
    run_sql_file("pgqueuer_1_6.sql")
    op.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON pgqueuer, pgqueuer_log, pgqueuer_schedules, pgqueuer_statistics TO {APP_ROLE}"
    )
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    # Readiness compares the applied revision with the code's.
    op.execute(f"GRANT SELECT ON alembic_version TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE pgqueuer, pgqueuer_log, pgqueuer_schedules, pgqueuer_statistics")
    op.execute("DROP FUNCTION fn_pgqueuer_changed() CASCADE")
    op.execute("DROP TYPE pgqueuer_status")
    op.execute("DROP FUNCTION maxloyalty_ensure_partitions(integer)")
    op.drop_index(op.f("ix_points_of_sale_tenant_id"), table_name="points_of_sale")
    op.drop_index(op.f("ix_points_of_sale_restaurant_id"), table_name="points_of_sale")
    op.drop_table("points_of_sale")
    op.drop_index(op.f("ix_restaurants_tenant_id"), table_name="restaurants")
    op.drop_table("restaurants")
    op.drop_index(op.f("ix_integration_events_tenant_id"), table_name="integration_events")
    op.drop_index(
        "ix_integration_events_pending",
        table_name="integration_events",
        postgresql_where="status = 'PENDING'",
    )
    op.drop_table("integration_events")
    op.drop_table("tenants")
    op.drop_index("ix_activity_log_tenant_id_created_at", table_name="activity_log")
    op.drop_index("ix_activity_log_entity", table_name="activity_log")
    op.drop_table("activity_log")
