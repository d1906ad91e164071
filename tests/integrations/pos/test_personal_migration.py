"""Migration 0011 on a database with POS history: an iiko event's personal fields leave its
payload for the encrypted `personal` column, with the phone's blind index and the card of the
order's check; R-Keeper's XML is encrypted; the downgrade gives both back in plain text."""

from __future__ import annotations

import json
import uuid

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.config import Settings
from maxloyalty.identity.service.contacts import phone_index
from maxloyalty.kit import crypto
from maxloyalty.kit.db import APP_ROLE
from maxloyalty.kit.migrate import alembic_config
from tests.integrations import test_webhooks_migration as webhooks_migration

scratch = webhooks_migration.scratch  # a database of its own, beside the suite's

TENANT, RESTAURANT, USER, SYSTEM, CARD, KEY, INTEGRATION = (uuid.uuid4() for _ in range(7))
ORDER_ID = str(uuid.uuid4())
XML = '<?xml version="1.0" encoding="utf-8"?><ROOT><TransactionsEx Card="123456"/></ROOT>'
ORDER = {
    "status": "Closed",
    "sum": 100,
    "phone": "8 925 123-45-67",
    "customer": {"type": "regular", "id": str(uuid.uuid4()), "name": "Вера", "surname": "Ли"},
    "comment": None,
    "items": [],
}
EVENT = {"eventType": "DeliveryOrderUpdate", "eventInfo": {"id": ORDER_ID, "order": ORDER}}
PLAIN = {"eventType": "StopListUpdate", "eventInfo": {"terminalGroupsStopListsUpdates": []}}


async def _alembic(engine: AsyncEngine, step: str, revision: str, settings: Settings) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config("", settings)
        config.attributes["connection"] = connection
        getattr(command, step)(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


_HISTORY = [
    "INSERT INTO tenants (id, name, slug, organization_type, subscription_status, timezone,"
    " features, settings) VALUES (:t, 'Сеть', 'mig', 'chain', 'ACTIVE', 'UTC', '{}', '{}')",
    "INSERT INTO restaurants (id, tenant_id, name, timezone, status)"
    " VALUES (:r, :t, 'Зал', 'UTC', 'ACTIVE')",
    "INSERT INTO users (id, role, is_active, is_blocked, phone_verified, email_verified)"
    " VALUES (:u, 'GUEST', true, false, true, false)",
    "INSERT INTO loyalty_systems (id, tenant_id, type, mode, expiry_days, pending_days,"
    " max_redeem_percent, level_metric, manual_approval_threshold, expiry_reminder_days,"
    " allow_guest_transfers, rounding, design) VALUES (:l, :t, 'POINTS', 'UNIFIED', 180, 0,"
    " 50, 'LIFETIME', 1000, 7, false, 'FLOOR', '{}')",
    "INSERT INTO guest_cards (id, tenant_id, user_id, loyalty_system_id, code, status,"
    " registration_source, balance, pending_balance, lifetime_spent, total_visits)"
    " VALUES (:c, :t, :u, :l, '123456', 'ACTIVE', 'POS', 0, 0, 0, 0)",
    "INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, restaurant_ids)"
    " VALUES (:k, :t, 'POS', 'hash', 'mlk_', '{}')",
    "INSERT INTO pos_integrations (id, tenant_id, restaurant_id, system, name, api_key_id,"
    " settings, hold_ttl_seconds, is_active) VALUES (:i, :t, :r, 'IIKO', 'iiko', :k, '{}',"
    " 900, true)",
    "INSERT INTO pos_transactions (id, tenant_id, integration_id, card_id, operation,"
    " order_id, check_amount, items, payments, raw, points_accrued, points_redeemed,"
    " discount_applied, status, created_at) VALUES (gen_random_uuid(), :t, :i, :c, 'SALE',"
    " :order, 10000, '[]', '[]', :xml, 5, 0, 0, 'PROCESSED', now())",
    "INSERT INTO pos_events (id, tenant_id, integration_id, event_type, payload, status,"
    " received_at) VALUES (gen_random_uuid(), :t, :i, 'DeliveryOrderUpdate',"
    " CAST(:event AS jsonb), 'PROCESSED', now()), (gen_random_uuid(), :t, :i,"
    " 'StopListUpdate', CAST(:plain AS jsonb), 'IGNORED', now() + interval '1 second')",
]


async def test_pos_history_is_encrypted_by_the_upgrade_and_opened_by_the_downgrade(
    scratch: AsyncEngine, settings: Settings
) -> None:
    await _alembic(scratch, "upgrade", "0010", settings)
    values = {"t": TENANT, "r": RESTAURANT, "u": USER, "l": SYSTEM, "c": CARD, "k": KEY}
    values |= {"i": INTEGRATION, "order": ORDER_ID}
    values |= {"xml": XML, "event": json.dumps(EVENT), "plain": json.dumps(PLAIN)}
    async with scratch.begin() as conn:
        for statement in _HISTORY:
            await conn.execute(text(statement), values)

    await _alembic(scratch, "upgrade", "0011", settings)
    async with scratch.connect() as conn:
        raw = await conn.scalar(text("SELECT raw FROM pos_transactions"))
        events = (
            await conn.execute(
                text(
                    "SELECT payload, personal, phone_hash, card_id FROM pos_events"
                    " ORDER BY received_at"
                )
            )
        ).all()
        may_update = {
            f"{table}.{column}": await conn.scalar(
                text("SELECT has_column_privilege(:r, :t, :c, 'UPDATE')"),
                {"r": APP_ROLE, "t": table, "c": column},
            )
            for table, column in (
                ("pos_transactions", "raw"),
                ("pos_transactions", "check_amount"),
                ("consents", "ip_address"),
                ("consents", "granted"),
            )
        }
    ring = crypto.keyring()  # the migration's, from the same settings as the app's
    assert "TransactionsEx" not in raw
    assert ring.decrypt(raw) == XML
    (delivery, personal, phone_hash, card_id), stop_list = events
    assert delivery == {
        "eventType": "DeliveryOrderUpdate",
        "eventInfo": {
            "id": ORDER_ID,
            "order": {"status": "Closed", "sum": 100, "comment": None, "items": []},
        },
    }
    assert "Вера" not in personal
    assert json.loads(ring.decrypt(personal)) == {
        "eventInfo.order.phone": ORDER["phone"],
        "eventInfo.order.customer": ORDER["customer"],
    }
    assert phone_hash == phone_index("+79251234567")
    assert card_id == CARD  # the card of the check posted for the order
    assert stop_list == (PLAIN, None, None, None)
    assert may_update == {
        "pos_transactions.raw": True,
        "pos_transactions.check_amount": False,
        "consents.ip_address": True,
        "consents.granted": False,
    }

    await _alembic(scratch, "downgrade", "0010", settings)
    async with scratch.connect() as conn:
        assert await conn.scalar(text("SELECT raw FROM pos_transactions")) == XML
        payloads = await conn.scalars(text("SELECT payload FROM pos_events ORDER BY received_at"))
        assert list(payloads) == [EVENT, PLAIN]
        assert not await conn.scalar(
            text("SELECT has_column_privilege(:r, 'consents', 'ip_address', 'UPDATE')"),
            {"r": APP_ROLE},
        )
