"""Webhooks in order: the attempt log becomes `webhook_logs`, and `webhook_deliveries` holds
one row per event owed to an endpoint (its queue); endpoints keep a rotated-out secret.

Existing attempts get their delivery (SENT if one succeeded, else FAILED); jobs of the old
one-job-per-attempt delivery still queued become PENDING deliveries, which the sweep job
wakes. Run it with the workers stopped, as every migration.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from maxloyalty.migrations.helpers import tenant_table

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Names that carry the table's name, old and new. The RLS policies and grants belong to the
# table itself and follow the rename.
_RENAMED = {
    "pk_webhook_deliveries": "pk_webhook_logs",
    "fk_webhook_deliveries_tenant_id_tenants": "fk_webhook_logs_tenant_id_tenants",
}
_RENAMED_INDEXES = {
    "ix_webhook_deliveries_endpoint": "ix_webhook_logs_endpoint",
    "ix_webhook_deliveries_tenant_id": "ix_webhook_logs_tenant_id",
}
_OLD_JOB, _NEW_JOB, _SWEEP_JOB = "webhooks.deliver", "webhooks.drain", "webhooks.sweep"


def _rename(table: str, names: dict[str, str], indexes: dict[str, str]) -> None:
    for old, new in names.items():
        op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}")
    for old, new in indexes.items():
        op.execute(f"ALTER INDEX {old} RENAME TO {new}")


def upgrade() -> None:
    op.rename_table("webhook_deliveries", "webhook_logs")
    _rename("webhook_logs", _RENAMED, _RENAMED_INDEXES)

    op.add_column("webhook_endpoints", sa.Column("previous_secret", sa.String(300)))
    op.add_column(
        "webhook_endpoints",
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True)),
    )
    # Referenced by (tenant_id, endpoint_id) below.
    op.create_unique_constraint(
        op.f("uq_webhook_endpoints_tenant_id_id"), "webhook_endpoints", ["tenant_id", "id"]
    )

    op.create_table(
        "webhook_deliveries",
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("event_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "SENT",
                "FAILED",
                name="webhook_delivery_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["integration_events.id"],
            name=op.f("fk_webhook_deliveries_event_id_integration_events"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            name="fk_webhook_deliveries_endpoint",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_webhook_deliveries_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "endpoint_id", "event_id", name=op.f("uq_webhook_deliveries_endpoint_id_event_id")
        ),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_webhook_deliveries_tenant_id_id")),
    )
    op.create_index(
        "ix_webhook_deliveries_queue",
        "webhook_deliveries",
        ["endpoint_id", "event_created_at", "event_id"],
        unique=False,
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_tenant_id"), "webhook_deliveries", ["tenant_id"], unique=False
    )
    tenant_table("webhook_deliveries", app_privileges="SELECT, INSERT, UPDATE")

    # One delivery per (endpoint, event) attempted so far.
    op.execute(
        """
        INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type,
            event_created_at, status, attempts, created_at, finished_at)
        SELECT gen_random_uuid(), l.tenant_id, l.endpoint_id, l.event_id, min(l.event_type),
            e.created_at, CASE WHEN bool_or(l.succeeded) THEN 'SENT' ELSE 'FAILED' END,
            max(l.attempt), min(l.created_at), max(l.created_at)
        FROM webhook_logs l JOIN integration_events e ON e.id = l.event_id
        GROUP BY l.tenant_id, l.endpoint_id, l.event_id, e.created_at
        """
    )
    # Attempts the old jobs still had to make: pending, due when the job was.
    op.execute(
        f"""
        WITH queued AS (
            SELECT convert_from(payload, 'UTF8')::jsonb AS p, execute_after
            FROM pgqueuer WHERE entrypoint = '{_OLD_JOB}' AND status = 'queued'
        )
        INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type,
            event_created_at, status, attempts, next_attempt_at, created_at)
        SELECT gen_random_uuid(), e.tenant_id, w.id, e.id, e.event_type, e.created_at,
            'PENDING', (q.p ->> 'attempt')::bigint - 1, q.execute_after, now()
        FROM queued q
        JOIN integration_events e ON e.id = (q.p ->> 'event_id')::uuid
        JOIN webhook_endpoints w ON w.id = (q.p ->> 'endpoint_id')::uuid
        ON CONFLICT (endpoint_id, event_id) DO UPDATE
        SET status = 'PENDING', attempts = EXCLUDED.attempts,
            next_attempt_at = EXCLUDED.next_attempt_at, finished_at = NULL
        """
    )
    op.execute(f"DELETE FROM pgqueuer WHERE entrypoint = '{_OLD_JOB}' AND status = 'queued'")

    op.add_column("webhook_logs", sa.Column("delivery_id", sa.Uuid(), nullable=True))
    op.execute(
        """
        UPDATE webhook_logs l SET delivery_id = d.id FROM webhook_deliveries d
        WHERE d.endpoint_id = l.endpoint_id AND d.event_id = l.event_id
        """
    )
    op.alter_column("webhook_logs", "delivery_id", nullable=False)
    op.drop_constraint(
        "fk_webhook_deliveries_endpoint_id_webhook_endpoints", "webhook_logs", type_="foreignkey"
    )
    op.create_foreign_key(
        "fk_webhook_logs_endpoint",
        "webhook_logs",
        "webhook_endpoints",
        ["tenant_id", "endpoint_id"],
        ["tenant_id", "id"],
    )
    op.create_foreign_key(
        "fk_webhook_logs_delivery",
        "webhook_logs",
        "webhook_deliveries",
        ["tenant_id", "delivery_id"],
        ["tenant_id", "id"],
    )


def downgrade() -> None:
    op.drop_constraint("fk_webhook_logs_delivery", "webhook_logs", type_="foreignkey")
    op.drop_constraint("fk_webhook_logs_endpoint", "webhook_logs", type_="foreignkey")
    op.drop_column("webhook_logs", "delivery_id")
    # Pending deliveries go back to one job per attempt.
    op.execute(
        f"""
        INSERT INTO pgqueuer (priority, entrypoint, payload, execute_after, status)
        SELECT 0, '{_OLD_JOB}', convert_to(json_build_object(
                'tenant_id', tenant_id, 'endpoint_id', endpoint_id, 'event_id', event_id,
                'attempt', attempts + 1)::text, 'UTF8'),
            coalesce(next_attempt_at, now()), 'queued'
        FROM webhook_deliveries WHERE status = 'PENDING'
        """
    )
    op.execute(f"DELETE FROM pgqueuer WHERE entrypoint IN ('{_NEW_JOB}', '{_SWEEP_JOB}')")
    op.execute(f"DELETE FROM pgqueuer_schedules WHERE entrypoint = '{_SWEEP_JOB}'")
    op.drop_index(op.f("ix_webhook_deliveries_tenant_id"), table_name="webhook_deliveries")
    op.drop_index(
        "ix_webhook_deliveries_queue",
        table_name="webhook_deliveries",
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.drop_table("webhook_deliveries")
    op.drop_constraint(
        op.f("uq_webhook_endpoints_tenant_id_id"), "webhook_endpoints", type_="unique"
    )
    op.drop_column("webhook_endpoints", "previous_secret_expires_at")
    op.drop_column("webhook_endpoints", "previous_secret")

    _rename(
        "webhook_logs",
        {new: old for old, new in _RENAMED.items()},
        {new: old for old, new in _RENAMED_INDEXES.items()},
    )
    op.rename_table("webhook_logs", "webhook_deliveries")
    op.create_foreign_key(
        "fk_webhook_deliveries_endpoint_id_webhook_endpoints",
        "webhook_deliveries",
        "webhook_endpoints",
        ["endpoint_id"],
        ["id"],
    )
