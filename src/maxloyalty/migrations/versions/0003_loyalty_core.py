"""Loyalty core: programmes, levels, guest profiles and cards, the points ledger.

Ledger rows are immutable for the app role: it may insert them and change only status
columns (column-level grants), never an amount; nothing may be deleted.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 23:09:22.182261
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from maxloyalty.kit.db import APP_ROLE
from maxloyalty.migrations.helpers import tenant_table

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "guest_profiles",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        sa.Column("middle_name", sa.String(length=100), nullable=True),
        sa.Column(
            "gender",
            sa.Enum("MALE", "FEMALE", "OTHER", name="gender", native_enum=False, length=16),
            nullable=True,
        ),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("city", sa.String(length=120), nullable=True),
        sa.Column("avatar_url", sa.String(length=500), nullable=True),
        sa.Column("telegram_username", sa.String(length=64), nullable=True),
        sa.Column(
            "preferred_channel",
            sa.Enum(
                "SMS", "TELEGRAM", "EMAIL", "PHONE", name="channel", native_enum=False, length=16
            ),
            nullable=False,
        ),
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
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_guest_profiles_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_guest_profiles_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guest_profiles")),
        sa.UniqueConstraint(
            "tenant_id", "user_id", name=op.f("uq_guest_profiles_tenant_id_user_id")
        ),
    )
    op.create_index(
        op.f("ix_guest_profiles_tenant_id"), "guest_profiles", ["tenant_id"], unique=False
    )
    op.create_index(op.f("ix_guest_profiles_user_id"), "guest_profiles", ["user_id"], unique=False)
    op.create_table(
        "ledger_operations",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("business_key", sa.String(length=300), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_ledger_operations_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_operations")),
    )
    op.create_index(
        op.f("ix_ledger_operations_tenant_id"), "ledger_operations", ["tenant_id"], unique=False
    )
    op.create_index(
        "uq_ledger_operations_business_key",
        "ledger_operations",
        ["tenant_id", "business_key"],
        unique=True,
        postgresql_where=sa.text("business_key IS NOT NULL"),
    )
    op.create_index(
        "uq_ledger_operations_idempotency_key",
        "ledger_operations",
        ["tenant_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_table(
        "guest_children",
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["guest_profiles.id"],
            name=op.f("fk_guest_children_profile_id_guest_profiles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_guest_children_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guest_children")),
    )
    op.create_index(
        op.f("ix_guest_children_profile_id"), "guest_children", ["profile_id"], unique=False
    )
    op.create_index(
        op.f("ix_guest_children_tenant_id"), "guest_children", ["tenant_id"], unique=False
    )
    op.create_table(
        "loyalty_systems",
        sa.Column("restaurant_id", sa.Uuid(), nullable=True),
        sa.Column(
            "type",
            sa.Enum("POINTS", "DISCOUNT", name="program_type", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "mode",
            sa.Enum("UNIFIED", "SEPARATE", name="card_mode", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("expiry_days", sa.Integer(), nullable=False),
        sa.Column("pending_days", sa.Integer(), nullable=False),
        sa.Column("max_redeem_percent", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("discount_cap_percent", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column(
            "level_metric",
            sa.Enum("LIFETIME", "ROLLING", name="level_metric", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("rolling_days", sa.Integer(), nullable=True),
        sa.Column("manual_approval_threshold", sa.Integer(), nullable=False),
        sa.Column("expiry_reminder_days", sa.Integer(), nullable=False),
        sa.Column("design", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
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
            "expiry_days BETWEEN 1 AND 3650", name=op.f("ck_loyalty_systems_expiry_days_range")
        ),
        sa.CheckConstraint(
            "max_redeem_percent > 0 AND max_redeem_percent <= 100",
            name=op.f("ck_loyalty_systems_max_redeem_range"),
        ),
        sa.CheckConstraint(
            "pending_days BETWEEN 0 AND 90", name=op.f("ck_loyalty_systems_pending_days_range")
        ),
        sa.CheckConstraint(
            "rolling_days IS NULL OR rolling_days > 0",
            name=op.f("ck_loyalty_systems_rolling_days_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["restaurant_id"],
            ["restaurants.id"],
            name=op.f("fk_loyalty_systems_restaurant_id_restaurants"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_loyalty_systems_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_systems")),
    )
    op.create_index(
        op.f("ix_loyalty_systems_tenant_id"), "loyalty_systems", ["tenant_id"], unique=False
    )
    op.create_index(
        "uq_loyalty_systems_scope",
        "loyalty_systems",
        [
            "tenant_id",
            sa.literal_column(
                "coalesce(restaurant_id, '00000000-0000-0000-0000-000000000000'::uuid)"
            ),
        ],
        unique=True,
    )
    op.create_table(
        "loyalty_levels",
        sa.Column("loyalty_system_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("min_spent", sa.Integer(), nullable=False),
        sa.Column("percentage", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("birthday_bonus", sa.Integer(), nullable=False),
        sa.Column("purchase_bonus", sa.Integer(), nullable=False),
        sa.Column("free_item_code", sa.String(length=64), nullable=True),
        sa.Column("color", sa.String(length=7), nullable=True),
        sa.Column("icon_url", sa.String(length=500), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
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
            "birthday_bonus >= 0 AND purchase_bonus >= 0",
            name=op.f("ck_loyalty_levels_bonuses_non_negative"),
        ),
        sa.CheckConstraint("min_spent >= 0", name=op.f("ck_loyalty_levels_min_spent_non_negative")),
        sa.CheckConstraint(
            "percentage >= 0 AND percentage <= 100", name=op.f("ck_loyalty_levels_percentage_range")
        ),
        sa.ForeignKeyConstraint(
            ["loyalty_system_id"],
            ["loyalty_systems.id"],
            name=op.f("fk_loyalty_levels_loyalty_system_id_loyalty_systems"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_loyalty_levels_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_levels")),
        sa.UniqueConstraint(
            "loyalty_system_id", "name", name=op.f("uq_loyalty_levels_loyalty_system_id_name")
        ),
        sa.UniqueConstraint(
            "loyalty_system_id",
            "position",
            name=op.f("uq_loyalty_levels_loyalty_system_id_position"),
            deferrable=True,
            initially="DEFERRED",
        ),
    )
    op.create_index(
        op.f("ix_loyalty_levels_loyalty_system_id"),
        "loyalty_levels",
        ["loyalty_system_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_loyalty_levels_tenant_id"), "loyalty_levels", ["tenant_id"], unique=False
    )
    op.create_table(
        "guest_cards",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("loyalty_system_id", sa.Uuid(), nullable=False),
        sa.Column("restaurant_id", sa.Uuid(), nullable=True),
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "ACTIVE", "BLOCKED", "DELETED", name="card_status", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column(
            "registration_source",
            sa.Enum(
                "POS",
                "LINK",
                "TELEGRAM",
                "MANUAL",
                name="registration_source",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("level_id", sa.Uuid(), nullable=True),
        sa.Column("balance", sa.Integer(), nullable=False),
        sa.Column("pending_balance", sa.Integer(), nullable=False),
        sa.Column("lifetime_spent", sa.Integer(), nullable=False),
        sa.Column("total_visits", sa.Integer(), nullable=False),
        sa.Column("last_visit_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.CheckConstraint("code ~ '^[0-9]{6}$'", name=op.f("ck_guest_cards_code_six_digits")),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_guest_cards_balance_non_negative")),
        sa.CheckConstraint(
            "pending_balance >= 0", name=op.f("ck_guest_cards_pending_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["level_id"], ["loyalty_levels.id"], name=op.f("fk_guest_cards_level_id_loyalty_levels")
        ),
        sa.ForeignKeyConstraint(
            ["loyalty_system_id"],
            ["loyalty_systems.id"],
            name=op.f("fk_guest_cards_loyalty_system_id_loyalty_systems"),
        ),
        sa.ForeignKeyConstraint(
            ["restaurant_id"],
            ["restaurants.id"],
            name=op.f("fk_guest_cards_restaurant_id_restaurants"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_guest_cards_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_guest_cards_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guest_cards")),
    )
    op.create_index(op.f("ix_guest_cards_tenant_id"), "guest_cards", ["tenant_id"], unique=False)
    op.create_index(op.f("ix_guest_cards_user_id"), "guest_cards", ["user_id"], unique=False)
    op.create_index(
        "uq_guest_cards_active_code",
        "guest_cards",
        ["tenant_id", "code"],
        unique=True,
        postgresql_where=sa.text("status = 'ACTIVE'"),
    )
    op.create_index(
        "uq_guest_cards_holder",
        "guest_cards",
        [
            "tenant_id",
            "user_id",
            sa.literal_column(
                "coalesce(restaurant_id, '00000000-0000-0000-0000-000000000000'::uuid)"
            ),
        ],
        unique=True,
        postgresql_where=sa.text("status <> 'DELETED'"),
    )
    op.create_table(
        "point_lots",
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activates_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_point_lots_amount_positive")),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= amount", name=op.f("ck_point_lots_remaining_in_range")
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["guest_cards.id"], name=op.f("fk_point_lots_card_id_guest_cards")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_point_lots_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_lots")),
    )
    op.create_index(
        "ix_point_lots_expiring",
        "point_lots",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_index(
        "ix_point_lots_open",
        "point_lots",
        ["card_id", "expires_at"],
        unique=False,
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_index(op.f("ix_point_lots_tenant_id"), "point_lots", ["tenant_id"], unique=False)
    op.create_table(
        "point_transactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("operation_id", sa.Uuid(), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "ACCRUAL",
                "REDEMPTION",
                "MANUAL",
                "PROMO",
                "BIRTHDAY",
                "REFERRAL",
                "EXPIRATION",
                "TRANSFER",
                "ADJUSTMENT",
                "REVERSAL",
                name="tx_type",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "COMPLETED",
                "FAILED",
                "CANCELLED",
                "REVERSED",
                name="tx_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "POS", "MANUAL", "PROMO", "SYSTEM", name="tx_source", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("source_id", sa.String(length=128), nullable=True),
        sa.Column("restaurant_id", sa.Uuid(), nullable=True),
        sa.Column("check_number", sa.String(length=64), nullable=True),
        sa.Column("check_amount", sa.Integer(), nullable=True),
        sa.Column("paid_amount", sa.Integer(), nullable=True),
        sa.Column("discount_amount", sa.Integer(), nullable=True),
        sa.Column("level_id", sa.Uuid(), nullable=True),
        sa.Column("percentage", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("reverses_id", sa.Uuid(), nullable=True),
        sa.Column("reward_item_id", sa.Uuid(), nullable=True),
        sa.Column("campaign_id", sa.Uuid(), nullable=True),
        sa.Column("created_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("approved_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["guest_cards.id"], name=op.f("fk_point_transactions_card_id_guest_cards")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_point_transactions_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", "created_at", name=op.f("pk_point_transactions")),
        postgresql_partition_by="RANGE (created_at)",
    )
    op.create_index(
        "ix_point_transactions_card", "point_transactions", ["card_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_point_transactions_operation", "point_transactions", ["operation_id"], unique=False
    )
    op.create_index(
        "ix_point_transactions_reverses", "point_transactions", ["reverses_id"], unique=False
    )
    op.create_index(
        op.f("ix_point_transactions_tenant_id"), "point_transactions", ["tenant_id"], unique=False
    )
    op.create_table(
        "tier_changes",
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("from_level_id", sa.Uuid(), nullable=True),
        sa.Column("to_level_id", sa.Uuid(), nullable=True),
        sa.Column(
            "reason",
            sa.Enum(
                "PURCHASE",
                "LEVELS_EDITED",
                "REFUND",
                "ROLLING_WINDOW",
                name="tier_reason",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("operation_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["guest_cards.id"], name=op.f("fk_tier_changes_card_id_guest_cards")
        ),
        sa.ForeignKeyConstraint(
            ["from_level_id"],
            ["loyalty_levels.id"],
            name=op.f("fk_tier_changes_from_level_id_loyalty_levels"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tier_changes_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["to_level_id"],
            ["loyalty_levels.id"],
            name=op.f("fk_tier_changes_to_level_id_loyalty_levels"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_changes")),
    )
    op.create_index(op.f("ix_tier_changes_card_id"), "tier_changes", ["card_id"], unique=False)
    op.create_index(op.f("ix_tier_changes_tenant_id"), "tier_changes", ["tenant_id"], unique=False)
    op.create_table(
        "lot_allocations",
        sa.Column("lot_id", sa.Uuid(), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_lot_allocations_amount_non_zero")),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["point_lots.id"], name=op.f("fk_lot_allocations_lot_id_point_lots")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_lot_allocations_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lot_allocations")),
    )
    op.create_index("ix_lot_allocations_lot", "lot_allocations", ["lot_id"], unique=False)
    op.create_index(
        op.f("ix_lot_allocations_tenant_id"), "lot_allocations", ["tenant_id"], unique=False
    )
    op.create_index(
        "ix_lot_allocations_transaction", "lot_allocations", ["transaction_id"], unique=False
    )

    for table in ("loyalty_systems", "loyalty_levels", "guest_profiles", "guest_children"):
        tenant_table(table)
    tenant_table("guest_cards", app_privileges="SELECT, INSERT, UPDATE")
    tenant_table("tier_changes", app_privileges="SELECT, INSERT")
    tenant_table("lot_allocations", app_privileges="SELECT, INSERT")
    tenant_table("point_lots", app_privileges="SELECT, INSERT, UPDATE (remaining, activated)")
    tenant_table(
        "point_transactions",
        app_privileges="SELECT, INSERT, UPDATE (status, approved_by_user_id, status_changed_at)",
    )
    tenant_table(
        "ledger_operations",
        app_privileges="SELECT, INSERT, UPDATE (response, status_code, card_id)",
    )
    op.execute(
        f"REVOKE TRUNCATE ON point_transactions, point_lots, lot_allocations FROM {APP_ROLE}"
    )
    # Partitions for back-dated history too (imports, the demo's year of visits).
    op.execute("DROP FUNCTION maxloyalty_ensure_partitions(integer)")
    op.execute("""
        CREATE FUNCTION maxloyalty_ensure_partitions(months_ahead integer, months_back integer DEFAULT 1)
        RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE
          parent record;
          month_start timestamptz;
          partition_name text;
          created integer := 0;
        BEGIN
          IF months_ahead < 0 OR months_ahead > 24 OR months_back < 0 OR months_back > 36 THEN
            RAISE EXCEPTION 'months out of range: % ahead, % back', months_ahead, months_back;
          END IF;
          FOR parent IN
            SELECT c.relname FROM pg_partitioned_table p
            JOIN pg_class c ON c.oid = p.partrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND p.partstrat = 'r'
          LOOP
            FOR i IN -months_back..months_ahead LOOP
              month_start := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                             + make_interval(months => i);
              partition_name := parent.relname || '_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
              IF to_regclass(partition_name) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               partition_name, parent.relname, month_start,
                               month_start + interval '1 month');
                EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', partition_name);
                created := created + 1;
              END IF;
            END LOOP;
          END LOOP;
          RETURN created;
        END $$
    """)
    op.execute("REVOKE ALL ON FUNCTION maxloyalty_ensure_partitions(integer, integer) FROM PUBLIC")
    op.execute(
        f"GRANT EXECUTE ON FUNCTION maxloyalty_ensure_partitions(integer, integer) TO {APP_ROLE}"
    )
    op.execute("SELECT maxloyalty_ensure_partitions(3, 13)")


def downgrade() -> None:
    op.drop_index("ix_lot_allocations_transaction", table_name="lot_allocations")
    op.drop_index(op.f("ix_lot_allocations_tenant_id"), table_name="lot_allocations")
    op.drop_index("ix_lot_allocations_lot", table_name="lot_allocations")
    op.drop_table("lot_allocations")
    op.drop_index(op.f("ix_tier_changes_tenant_id"), table_name="tier_changes")
    op.drop_index(op.f("ix_tier_changes_card_id"), table_name="tier_changes")
    op.drop_table("tier_changes")
    op.drop_index(op.f("ix_point_transactions_tenant_id"), table_name="point_transactions")
    op.drop_index("ix_point_transactions_reverses", table_name="point_transactions")
    op.drop_index("ix_point_transactions_operation", table_name="point_transactions")
    op.drop_index("ix_point_transactions_card", table_name="point_transactions")
    op.drop_table("point_transactions")
    op.drop_index(op.f("ix_point_lots_tenant_id"), table_name="point_lots")
    op.drop_index(
        "ix_point_lots_open", table_name="point_lots", postgresql_where=sa.text("remaining > 0")
    )
    op.drop_index(
        "ix_point_lots_expiring", table_name="point_lots", postgresql_where=sa.text("remaining > 0")
    )
    op.drop_table("point_lots")
    op.drop_index(
        "uq_guest_cards_holder",
        table_name="guest_cards",
        postgresql_where=sa.text("status <> 'DELETED'"),
    )
    op.drop_index(
        "uq_guest_cards_active_code",
        table_name="guest_cards",
        postgresql_where=sa.text("status = 'ACTIVE'"),
    )
    op.drop_index(op.f("ix_guest_cards_user_id"), table_name="guest_cards")
    op.drop_index(op.f("ix_guest_cards_tenant_id"), table_name="guest_cards")
    op.drop_table("guest_cards")
    op.drop_index(op.f("ix_loyalty_levels_tenant_id"), table_name="loyalty_levels")
    op.drop_index(op.f("ix_loyalty_levels_loyalty_system_id"), table_name="loyalty_levels")
    op.drop_table("loyalty_levels")
    op.drop_index("uq_loyalty_systems_scope", table_name="loyalty_systems")
    op.drop_index(op.f("ix_loyalty_systems_tenant_id"), table_name="loyalty_systems")
    op.drop_table("loyalty_systems")
    op.drop_index(op.f("ix_guest_children_tenant_id"), table_name="guest_children")
    op.drop_index(op.f("ix_guest_children_profile_id"), table_name="guest_children")
    op.drop_table("guest_children")
    op.drop_index(
        "uq_ledger_operations_idempotency_key",
        table_name="ledger_operations",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.drop_index(
        "uq_ledger_operations_business_key",
        table_name="ledger_operations",
        postgresql_where=sa.text("business_key IS NOT NULL"),
    )
    op.drop_index(op.f("ix_ledger_operations_tenant_id"), table_name="ledger_operations")
    op.drop_table("ledger_operations")
    op.drop_index(op.f("ix_guest_profiles_user_id"), table_name="guest_profiles")
    op.drop_index(op.f("ix_guest_profiles_tenant_id"), table_name="guest_profiles")
    op.drop_table("guest_profiles")
