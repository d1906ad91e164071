"""Idempotency keys are unique per caller, not per tenant: tills count keys independently.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 00:32:43.585286
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(
        op.f("uq_ledger_operations_idempotency_key"),
        table_name="ledger_operations",
        postgresql_where="(idempotency_key IS NOT NULL)",
    )
    op.create_index(
        "uq_ledger_operations_caller_key",
        "ledger_operations",
        ["tenant_id", "created_by", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_ledger_operations_caller_key",
        table_name="ledger_operations",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_index(
        op.f("uq_ledger_operations_idempotency_key"),
        "ledger_operations",
        ["tenant_id", "idempotency_key"],
        unique=True,
        postgresql_where="(idempotency_key IS NOT NULL)",
    )
