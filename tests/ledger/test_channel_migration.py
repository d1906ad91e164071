"""Migration 0012 on a database with ledger history: every row gets the channel it can be
told to have come from, the column is NOT NULL in every partition and not the app role's to
change, and the downgrade takes it away."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.config import Settings
from maxloyalty.kit.db import APP_ROLE
from tests.integrations import test_webhooks_migration as webhooks_migration
from tests.integrations.pos import test_personal_migration as personal_migration

scratch = webhooks_migration.scratch  # a database of its own, beside the suite's

TENANT, RESTAURANT, SYSTEM, CARD, GUEST, CASHIER = (uuid.uuid4() for _ in range(6))
RKEEPER, IIKO, CUSTOM = (uuid.uuid4() for _ in range(3))
RKEEPER_KEY, IIKO_KEY, IIKO_OLD_KEY, CUSTOM_KEY, KIOSK_KEY = (uuid.uuid4() for _ in range(5))

_NETWORK = [
    "INSERT INTO tenants (id, name, slug, organization_type, subscription_status, timezone,"
    " features, settings) VALUES (:t, 'Сеть', 'mig', 'chain', 'ACTIVE', 'UTC', '{}', '{}')",
    "INSERT INTO restaurants (id, tenant_id, name, timezone, status)"
    " VALUES (:r, :t, 'Зал', 'UTC', 'ACTIVE')",
    "INSERT INTO users (id, role, is_active, is_blocked, phone_verified, email_verified)"
    " VALUES (:guest, 'GUEST', true, false, true, false),"
    " (:cashier, 'CASHIER', true, false, false, false)",
    "INSERT INTO loyalty_systems (id, tenant_id, type, mode, expiry_days, pending_days,"
    " max_redeem_percent, level_metric, manual_approval_threshold, expiry_reminder_days,"
    " allow_guest_transfers, rounding, design) VALUES (:l, :t, 'POINTS', 'UNIFIED', 180, 0,"
    " 50, 'LIFETIME', 1000, 7, false, 'FLOOR', '{}')",
    "INSERT INTO guest_cards (id, tenant_id, user_id, loyalty_system_id, code, status,"
    " registration_source, balance, pending_balance, lifetime_spent, total_visits)"
    " VALUES (:c, :t, :guest, :l, '123456', 'ACTIVE', 'POS', 0, 0, 0, 0)",
]
_KEY = (
    "INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, restaurant_ids)"
    " VALUES (:id, :t, 'key', md5(random()::text), 'mlk_', '{}')"
)
_INTEGRATION = (
    "INSERT INTO pos_integrations (id, tenant_id, restaurant_id, system, name, api_key_id,"
    " settings, hold_ttl_seconds, is_active) VALUES (:id, :t, :r, :system, 'till', :key, '{}',"
    " 900, true)"
)
_OPERATION = (
    "INSERT INTO ledger_operations (id, tenant_id, kind, card_id, request_hash, response,"
    " status_code, created_at, created_by) VALUES (:op, :t, 'SALE', :c, '', '{}', 201, now(),"
    " :by)"
)
_ROW = (
    "INSERT INTO point_transactions (id, created_at, tenant_id, card_id, operation_id, type,"
    " status, amount, source, created_by_user_id) VALUES (:id, now(), :t, :c, :op, :type,"
    " 'COMPLETED', 1, :source, :user)"
)
_CHECK = (
    "INSERT INTO pos_transactions (id, tenant_id, integration_id, card_id, ledger_operation_id,"
    " operation, order_id, check_amount, items, payments, points_accrued, points_redeemed,"
    " discount_applied, status, created_at) VALUES (gen_random_uuid(), :t, :i, :c, :op,"
    " 'SALE', 'o-1', 10000, '[]', '[]', 1, 0, 0, 'PROCESSED', now())"
)
# (what happened, source, the operation's author, the row's author, the channel it gets)
_HISTORY = [
    ("expiry", "SYSTEM", None, None, "SYSTEM"),
    ("birthday of a guest", "SYSTEM", None, GUEST, "SYSTEM"),
    ("cashier's sale", "POS", CASHIER, CASHIER, "STAFF"),
    ("cashier's manual credit", "MANUAL", CASHIER, CASHIER, "STAFF"),
    ("guest's transfer", "MANUAL", GUEST, GUEST, "GUEST_APP"),
    ("R-Keeper's sale", "POS", RKEEPER, None, "RKEEPER"),
    ("iiko's sale by a key rotated out since", "POS", IIKO_OLD_KEY, None, "IIKO"),
    ("generic POS API's sale", "POS", CUSTOM, None, "POS_API"),
    ("kiosk's sale with a plain API key", "POS", KIOSK_KEY, None, "POS_API"),
    ("nobody's", "MANUAL", None, None, "SYSTEM"),
]


async def test_history_gets_its_channels_and_the_downgrade_drops_them(
    scratch: AsyncEngine, settings: Settings
) -> None:
    await personal_migration._alembic(scratch, "upgrade", "0011", settings)
    network = {"t": TENANT, "r": RESTAURANT, "l": SYSTEM, "c": CARD}
    network |= {"guest": GUEST, "cashier": CASHIER}
    rows: dict[uuid.UUID, str] = {}
    async with scratch.begin() as conn:
        for statement in _NETWORK:
            await conn.execute(text(statement), network)
        for key in (RKEEPER_KEY, IIKO_KEY, IIKO_OLD_KEY, CUSTOM_KEY, KIOSK_KEY):
            await conn.execute(text(_KEY), network | {"id": key})
        for integration, system, key in (
            (RKEEPER, "RKEEPER", RKEEPER_KEY),
            (IIKO, "IIKO", IIKO_KEY),
            (CUSTOM, "CUSTOM", CUSTOM_KEY),
        ):
            await conn.execute(
                text(_INTEGRATION), network | {"id": integration, "system": system, "key": key}
            )
        for what, source, by, user, _ in _HISTORY:
            op, row = uuid.uuid4(), uuid.uuid4()
            await conn.execute(text(_OPERATION), network | {"op": op, "by": by})
            await conn.execute(
                text(_ROW),
                network | {"id": row, "op": op, "type": "MANUAL", "source": source, "user": user},
            )
            if by == IIKO_OLD_KEY:  # the check iiko's integration recorded
                await conn.execute(text(_CHECK), network | {"i": IIKO, "op": op})
            rows[row] = what

    await personal_migration._alembic(scratch, "upgrade", "0012", settings)
    async with scratch.connect() as conn:
        found = await conn.execute(text("SELECT id, channel FROM point_transactions"))
        channels = {rows[row]: channel for row, channel in found}
        nullable = await conn.scalars(
            text(
                "SELECT DISTINCT is_nullable FROM information_schema.columns"
                " WHERE column_name = 'channel' AND table_name LIKE 'point_transactions%'"
            )
        )
        partitions = await conn.scalar(
            text(
                "SELECT count(*) FROM information_schema.columns WHERE column_name = 'channel'"
                " AND table_name LIKE 'point_transactions\\_2%'"
            )
        )
        privileges = [
            await conn.scalar(
                text("SELECT has_column_privilege(:r, 'point_transactions', 'channel', :p)"),
                {"r": APP_ROLE, "p": privilege},
            )
            for privilege in ("INSERT", "UPDATE")
        ]
    assert channels == {what: channel for what, *_, channel in _HISTORY}
    assert list(nullable) == ["NO"]
    assert partitions > 1  # the monthly partitions have it too
    assert privileges == [True, False]  # written once, like the rest of a row

    await personal_migration._alembic(scratch, "downgrade", "0011", settings)
    async with scratch.connect() as conn:
        assert not await conn.scalar(
            text(
                "SELECT EXISTS (SELECT FROM information_schema.columns"
                " WHERE table_name = 'point_transactions' AND column_name = 'channel')"
            )
        )
        assert await conn.scalar(text("SELECT count(*) FROM point_transactions")) == len(_HISTORY)
