"""Personal data at rest in POS records (152-FZ): iiko events keep the guest's personal
fields apart and encrypted (`pos_events.personal`), with the blind index of the order's
phone and the member's card, so that erasure finds them; R-Keeper's check XML
(`pos_transactions.raw`) is encrypted. The app role may clear what erasure clears: a
check's XML and a consent's IP address.

Existing rows are converted in batches with the installation's PII keyring (from the
settings `maxloyalty migrate` runs with, else from the environment); a database without
such rows needs no key. Events take the card of the check posted for their order. Run it
with the workers stopped, as every migration.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 10:00:00.000000
"""

import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from maxloyalty.config import get_settings
from maxloyalty.integrations.pos.iiko import personal
from maxloyalty.kit import crypto
from maxloyalty.kit.db import APP_ROLE

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500
_ORDER = "payload #> '{eventInfo,order}'"
# Events whose order carries a personal field that is not null.
_PERSONAL_EVENTS = (
    f"jsonb_typeof({_ORDER}) = 'object' AND jsonb_strip_nulls({_ORDER}) ?| CAST(:fields AS text[])"
)
_FIELDS = {"fields": list(personal.FIELDS)}
_NIL = "00000000-0000-0000-0000-000000000000"
Rewrite = Callable[[crypto.Keyring, sa.Row[Any]], dict[str, Any]]


def _keyring() -> crypto.Keyring:
    settings = context.config.attributes.get("settings") or get_settings()
    ring = crypto.keyring_of(settings)
    crypto.configure(ring)  # the blind index of a phone is taken with the process's keyring
    return ring


def _batched(select: str, update: str, rewrite: Rewrite, ring: crypto.Keyring) -> None:
    """Rewrite the rows `select` finds (`id > :after`, ordered by id), BATCH at a time."""
    conn, after = op.get_bind(), _NIL
    while rows := conn.execute(sa.text(select), {"after": after, "n": BATCH} | _FIELDS).all():
        conn.execute(sa.text(update), [rewrite(ring, row) for row in rows])
        after = rows[-1].id


def _seal_event(ring: crypto.Keyring, row: sa.Row[Any]) -> dict[str, Any]:
    kept = personal.separate(json.loads(row.payload))
    return {
        "id": row.id,
        "payload": json.dumps(kept.payload, ensure_ascii=False),
        "personal": ring.encrypt(kept.personal) if kept.personal else None,
        "phone_hash": kept.phone_hash,
    }


def _open_event(ring: crypto.Keyring, row: sa.Row[Any]) -> dict[str, Any]:
    whole = personal.merged(json.loads(row.payload), ring.decrypt(row.personal))
    return {"id": row.id, "payload": json.dumps(whole, ensure_ascii=False)}


def _seal_raw(ring: crypto.Keyring, row: sa.Row[Any]) -> dict[str, Any]:
    return {"id": row.id, "raw": ring.encrypt(row.raw)}


def _open_raw(ring: crypto.Keyring, row: sa.Row[Any]) -> dict[str, Any]:
    return {"id": row.id, "raw": ring.decrypt(row.raw)}


def _any(*conditions: str) -> bool:
    conn = op.get_bind()
    return any(
        conn.scalar(sa.text(f"SELECT EXISTS (SELECT FROM {where})"), _FIELDS)
        for where in conditions
    )


def upgrade() -> None:
    op.add_column("pos_events", sa.Column("personal", sa.String(), nullable=True))
    op.add_column("pos_events", sa.Column("phone_hash", sa.String(length=64), nullable=True))
    op.add_column("pos_events", sa.Column("card_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        "fk_pos_events_card",
        "pos_events",
        "guest_cards",
        ["tenant_id", "card_id"],
        ["tenant_id", "id"],
    )
    op.create_index(
        "ix_pos_events_phone_hash",
        "pos_events",
        ["phone_hash"],
        unique=False,
        postgresql_where=sa.text("phone_hash IS NOT NULL"),
    )
    op.create_index(
        "ix_pos_events_card",
        "pos_events",
        ["card_id"],
        unique=False,
        postgresql_where=sa.text("card_id IS NOT NULL"),
    )
    op.create_index(
        "ix_pos_transactions_card",
        "pos_transactions",
        ["card_id"],
        unique=False,
        postgresql_where=sa.text("card_id IS NOT NULL"),
    )
    # Ciphertext is text too: the type only follows the model's (EncryptedText is a String).
    op.alter_column("pos_transactions", "raw", existing_type=sa.Text(), type_=sa.String())
    # Erasure clears these; every other column stays as it was written.
    op.execute(f"GRANT UPDATE (raw) ON pos_transactions TO {APP_ROLE}")
    op.execute(f"GRANT UPDATE (ip_address) ON consents TO {APP_ROLE}")

    if _any(f"pos_events WHERE {_PERSONAL_EVENTS}", "pos_transactions WHERE raw IS NOT NULL"):
        ring = _keyring()
        _batched(
            f"SELECT id, payload::text AS payload FROM pos_events"
            f" WHERE {_PERSONAL_EVENTS} AND id > :after ORDER BY id LIMIT :n",
            "UPDATE pos_events SET payload = CAST(:payload AS jsonb), personal = :personal,"
            " phone_hash = :phone_hash WHERE id = :id",
            _seal_event,
            ring,
        )
        _batched(
            "SELECT id, raw FROM pos_transactions"
            " WHERE raw IS NOT NULL AND id > :after ORDER BY id LIMIT :n",
            "UPDATE pos_transactions SET raw = :raw WHERE id = :id",
            _seal_raw,
            ring,
        )
    # An order's check names the member the event was about (iiko order id = check number).
    op.execute(
        """
        UPDATE pos_events e SET card_id = t.card_id
        FROM pos_transactions t
        WHERE t.tenant_id = e.tenant_id AND t.integration_id = e.integration_id
          AND t.order_id = e.payload #>> '{eventInfo,id}' AND t.card_id IS NOT NULL
        """
    )


def downgrade() -> None:
    if _any("pos_events WHERE personal IS NOT NULL", "pos_transactions WHERE raw IS NOT NULL"):
        ring = _keyring()
        _batched(
            "SELECT id, payload::text AS payload, personal FROM pos_events"
            " WHERE personal IS NOT NULL AND id > :after ORDER BY id LIMIT :n",
            "UPDATE pos_events SET payload = CAST(:payload AS jsonb) WHERE id = :id",
            _open_event,
            ring,
        )
        _batched(
            "SELECT id, raw FROM pos_transactions"
            " WHERE raw IS NOT NULL AND id > :after ORDER BY id LIMIT :n",
            "UPDATE pos_transactions SET raw = :raw WHERE id = :id",
            _open_raw,
            ring,
        )
    op.execute(f"REVOKE UPDATE (ip_address) ON consents FROM {APP_ROLE}")
    op.execute(f"REVOKE UPDATE (raw) ON pos_transactions FROM {APP_ROLE}")
    op.alter_column("pos_transactions", "raw", existing_type=sa.String(), type_=sa.Text())
    op.drop_index(
        "ix_pos_transactions_card",
        table_name="pos_transactions",
        postgresql_where=sa.text("card_id IS NOT NULL"),
    )
    op.drop_index(
        "ix_pos_events_card",
        table_name="pos_events",
        postgresql_where=sa.text("card_id IS NOT NULL"),
    )
    op.drop_index(
        "ix_pos_events_phone_hash",
        table_name="pos_events",
        postgresql_where=sa.text("phone_hash IS NOT NULL"),
    )
    op.drop_constraint("fk_pos_events_card", "pos_events", type_="foreignkey")
    op.drop_column("pos_events", "card_id")
    op.drop_column("pos_events", "phone_hash")
    op.drop_column("pos_events", "personal")
