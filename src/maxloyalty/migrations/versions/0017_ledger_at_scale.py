"""The ledger at scale: a card's transactions indexed by id, not time (the history's first
page merges each partition's newest rows instead of sorting all of the card's); an index of
pending lots (a card's due activations, found by every operation's settle step and the
daily job without scanning every lot); `maxloyalty_uuid7`, the server's time-ordered id for
set-based writes (the daily job's)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-09 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# `activated IS false`, as SQLAlchemy renders `.is_(False)` (settle_due's query): the planner
# does not match a predicate `NOT activated` to it, and would scan every lot instead.
PENDING = sa.text("activated IS false")


def upgrade() -> None:
    op.drop_index("ix_point_transactions_card", table_name="point_transactions")
    op.create_index(
        "ix_point_transactions_card", "point_transactions", ["card_id", "id"], unique=False
    )
    op.create_index(
        "ix_point_lots_pending",
        "point_lots",
        ["card_id", "activates_at"],
        unique=False,
        postgresql_where=PENDING,
    )
    # As `kit.ids.uuid7` lays it out (RFC 9562): the unix milliseconds of `at` in the first
    # 48 bits over a random v4, whose version nibble becomes 7 (bits 52 and 53 set).
    op.execute("""
        CREATE FUNCTION maxloyalty_uuid7(at timestamptz DEFAULT clock_timestamp())
        RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
          SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                 placing substring(int8send(floor(extract(epoch FROM at) * 1000)::bigint) FROM 3)
                 FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
        $$
    """)


def downgrade() -> None:
    op.execute("DROP FUNCTION maxloyalty_uuid7(timestamptz)")
    op.drop_index("ix_point_lots_pending", table_name="point_lots", postgresql_where=PENDING)
    op.drop_index("ix_point_transactions_card", table_name="point_transactions")
    op.create_index(
        "ix_point_transactions_card",
        "point_transactions",
        ["card_id", "created_at"],
        unique=False,
    )
