"""Each network's own Telegram bot (token and webhook secret encrypted), the guests who
write to it (chat, deep-link referral code and restaurant), and the tenant of a public slug
for the app role (a Telegram webhook names its network by slug)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27 10:00:00.000000
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from maxloyalty.migrations.helpers import tenant_table

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[datetime]]:
    return [
        sa.Column(
            name,
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        )
        for name in ("created_at", "updated_at")
    ]


def upgrade() -> None:
    op.create_table(
        "telegram_bots",
        sa.Column("bot_id", sa.BigInteger(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=400), nullable=False),
        sa.Column("webhook_secret", sa.String(length=400), nullable=False),
        sa.Column("webhook_url", sa.String(length=500), nullable=True),
        sa.Column("menu_button_set", sa.Boolean(), nullable=False),
        sa.Column("setup_error", sa.String(length=500), nullable=True),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("connected_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["connected_by_user_id"],
            ["users.id"],
            name=op.f("fk_telegram_bots_connected_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_telegram_bots_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telegram_bots")),
        sa.UniqueConstraint("bot_id", name=op.f("uq_telegram_bots_bot_id")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_telegram_bots_tenant_id")),
    )
    op.create_index(
        op.f("ix_telegram_bots_tenant_id"), "telegram_bots", ["tenant_id"], unique=False
    )
    op.create_table(
        "telegram_chats",
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("language_code", sa.String(length=16), nullable=True),
        sa.Column("referral_code", sa.String(length=32), nullable=True),
        sa.Column("restaurant_id", sa.Uuid(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["tenant_id", "restaurant_id"],
            ["restaurants.tenant_id", "restaurants.id"],
            name="fk_telegram_chats_restaurant",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_telegram_chats_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_telegram_chats_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telegram_chats")),
        sa.UniqueConstraint(
            "tenant_id",
            "telegram_user_id",
            name=op.f("uq_telegram_chats_tenant_id_telegram_user_id"),
        ),
    )
    op.create_index(
        op.f("ix_telegram_chats_tenant_id"), "telegram_chats", ["tenant_id"], unique=False
    )
    op.create_index(op.f("ix_telegram_chats_user_id"), "telegram_chats", ["user_id"], unique=False)
    tenant_table("telegram_bots")
    tenant_table("telegram_chats")


def downgrade() -> None:
    op.drop_index(op.f("ix_telegram_chats_user_id"), table_name="telegram_chats")
    op.drop_index(op.f("ix_telegram_chats_tenant_id"), table_name="telegram_chats")
    op.drop_table("telegram_chats")
    op.drop_index(op.f("ix_telegram_bots_tenant_id"), table_name="telegram_bots")
    op.drop_table("telegram_bots")
