"""A programme's logo for the guest's card, stored by the app (bytes, checked type,
digest); programmes get the (tenant_id, id) key their child rows reference

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from maxloyalty.migrations.helpers import tenant_table

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_unique_constraint(
        op.f("uq_loyalty_systems_tenant_id_id"), "loyalty_systems", ["tenant_id", "id"]
    )
    op.create_table(
        "brand_logos",
        sa.Column("loyalty_system_id", sa.Uuid(), nullable=False),
        sa.Column("content_type", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
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
        sa.CheckConstraint(
            "content_type IN ('image/png', 'image/jpeg', 'image/webp')",
            name=op.f("ck_brand_logos_content_type_known"),
        ),
        sa.CheckConstraint("size BETWEEN 1 AND 262144", name=op.f("ck_brand_logos_size_range")),
        sa.CheckConstraint("octet_length(data) = size", name=op.f("ck_brand_logos_size_matches")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "loyalty_system_id"],
            ["loyalty_systems.tenant_id", "loyalty_systems.id"],
            name="fk_brand_logos_program",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_brand_logos_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brand_logos")),
        sa.UniqueConstraint("loyalty_system_id", name=op.f("uq_brand_logos_loyalty_system_id")),
    )
    op.create_index(op.f("ix_brand_logos_tenant_id"), "brand_logos", ["tenant_id"], unique=False)
    tenant_table("brand_logos")


def downgrade() -> None:
    op.drop_index(op.f("ix_brand_logos_tenant_id"), table_name="brand_logos")
    op.drop_table("brand_logos")
    op.drop_constraint(op.f("uq_loyalty_systems_tenant_id_id"), "loyalty_systems", type_="unique")
