"""How fractions of a point are rounded, per programme (down, as before, by default).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 00:15:19.636542
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "loyalty_systems",
        sa.Column(
            "rounding",
            sa.Enum("FLOOR", "HALF_UP", "CEILING", name="rounding", native_enum=False, length=16),
            nullable=False,
            server_default="FLOOR",
        ),
    )


def downgrade() -> None:
    op.drop_column("loyalty_systems", "rounding")
