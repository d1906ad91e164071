"""Rotating card codes: `card_rotating_codes` keeps each 6-digit code issued to a card for
one minute's window (a derived code cannot be reversed to its card, so it is looked up
here), and the programme's `require_rotating_code` refuses the static code and QR.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from maxloyalty.migrations.helpers import tenant_table

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "loyalty_systems",
        sa.Column("require_rotating_code", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "card_rotating_codes",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("time_window", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.CHAR(length=6), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "code ~ '^[0-9]{6}$'", name=op.f("ck_card_rotating_codes_code_six_digits")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "card_id"],
            ["guest_cards.tenant_id", "guest_cards.id"],
            name="fk_card_rotating_codes_card",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "card_id", "time_window", name=op.f("pk_card_rotating_codes")
        ),
        sa.UniqueConstraint(
            "tenant_id",
            "time_window",
            "code",
            name=op.f("uq_card_rotating_codes_tenant_id_time_window_code"),
        ),
    )
    # Issued, looked up and pruned; never changed.
    tenant_table("card_rotating_codes", app_privileges="SELECT, INSERT, DELETE")


def downgrade() -> None:
    op.drop_table("card_rotating_codes")
    op.drop_column("loyalty_systems", "require_rotating_code")
