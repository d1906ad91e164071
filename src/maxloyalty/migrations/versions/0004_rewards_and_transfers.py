"""Reward catalogue, and the programme switch for transfers between guests.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 23:26:30.592128
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from maxloyalty.migrations.helpers import tenant_table

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "redemption_items",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column("points_price", sa.Integer(), nullable=False),
        sa.Column("restaurant_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("active_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("image_url", sa.String(length=500), nullable=True),
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
        sa.CheckConstraint("points_price > 0", name=op.f("ck_redemption_items_price_positive")),
        sa.CheckConstraint(
            "stock IS NULL OR stock >= 0", name=op.f("ck_redemption_items_stock_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_redemption_items_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemption_items")),
    )
    op.create_index(
        op.f("ix_redemption_items_tenant_id"), "redemption_items", ["tenant_id"], unique=False
    )
    op.add_column(
        "loyalty_systems",
        sa.Column("allow_guest_transfers", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    tenant_table("redemption_items")


def downgrade() -> None:
    op.drop_column("loyalty_systems", "allow_guest_transfers")
    op.drop_index(op.f("ix_redemption_items_tenant_id"), table_name="redemption_items")
    op.drop_table("redemption_items")
