"""Who posted a ledger row: `point_transactions.channel` (STAFF, POS_API, RKEEPER, IIKO,
GUEST_APP, SYSTEM), beside `source`, which calls a cashier's sale and a till's both POS.

Existing rows are told from what they kept: the jobs' rows (source SYSTEM) are SYSTEM; an
operation a till posted (its integration recorded the check, or is the operation's author)
takes the integration's kind, CUSTOM being the generic POS API; another API key's is
POS_API; a person's is GUEST_APP for a guest, else STAFF; the rest SYSTEM. The column is
added to the partitioned parent, so every partition gets it. Run it with the workers
stopped, as every migration.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHANNEL = sa.Enum(
    "STAFF",
    "POS_API",
    "RKEEPER",
    "IIKO",
    "GUEST_APP",
    "SYSTEM",
    name="tx_channel",
    native_enum=False,
    length=16,
)


def upgrade() -> None:
    op.add_column("point_transactions", sa.Column("channel", _CHANNEL, nullable=True))
    op.execute(
        """
        UPDATE point_transactions t SET channel = CASE WHEN t.source = 'SYSTEM' THEN 'SYSTEM'
          ELSE coalesce(
            (SELECT CASE i.system WHEN 'RKEEPER' THEN 'RKEEPER' WHEN 'IIKO' THEN 'IIKO'
                    ELSE 'POS_API' END
               FROM ledger_operations o JOIN pos_integrations i
                 ON i.id = o.created_by
                 OR i.id IN (SELECT p.integration_id FROM pos_transactions p
                              WHERE p.ledger_operation_id = o.id)
              WHERE o.id = t.operation_id
              LIMIT 1),
            (SELECT 'POS_API' FROM ledger_operations o JOIN api_keys k ON k.id = o.created_by
              WHERE o.id = t.operation_id),
            (SELECT CASE u.role WHEN 'GUEST' THEN 'GUEST_APP' ELSE 'STAFF' END
               FROM users u WHERE u.id = t.created_by_user_id),
            'SYSTEM')
          END
        """
    )
    op.alter_column("point_transactions", "channel", existing_type=_CHANNEL, nullable=False)


def downgrade() -> None:
    op.drop_column("point_transactions", "channel")
