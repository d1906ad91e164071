"""The guest's personal data in what tills sent: moved to a new PII key by `pii reencrypt`
(with the tills' credentials), in the person's copy of their data, and gone with their
erasure (the figures stay)."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.identity.principal import Role
from maxloyalty.kit import crypto
from maxloyalty.ledger.service.verify import verify_tenant
from maxloyalty.privacy.service.key_rotation import reencrypt
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.integrations.pos.conftest import Till, TillFactory
from tests.integrations.pos.iiko.test_webhook import (
    _delivered,
    delivery_event,
    order_id,
    table_event,
)
from tests.integrations.pos.rkeeper.test_farcards import check_xml, number_of, post

PHONE = "+79251234567"
SECRETS = (
    "SELECT personal FROM pos_events WHERE personal IS NOT NULL"
    " UNION ALL SELECT raw FROM pos_transactions WHERE raw IS NOT NULL"
    " UNION ALL SELECT credentials FROM pos_integrations WHERE credentials IS NOT NULL"
    " UNION ALL SELECT webhook_secret FROM pos_integrations WHERE webhook_secret IS NOT NULL"
)


async def _iiko_and_rkeeper(make_till: TillFactory, runtime: Runtime) -> tuple[Till, Till]:
    """An iiko event naming a member by phone, and an R-Keeper check of another network."""
    iiko = await make_till("IIKO", credentials={"api_login": "login"})
    await iiko.guest(runtime, PHONE)
    await _delivered(iiko, runtime, [delivery_event(order_id(), phone=PHONE)])
    rkeeper = await make_till("RKEEPER", external_id="12")
    number = number_of(rkeeper.shop.card)
    assert (await post(rkeeper, check_xml((number, 3, 100000))))["Result"] == "0"
    return iiko, rkeeper


async def test_reencrypt_moves_pos_records_to_the_current_key(
    make_till: TillFactory, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    await _iiko_and_rkeeper(make_till, runtime)
    settings = runtime.settings
    original = crypto.keyring()
    rotated = crypto.Keyring(
        "a-brand-new-pii-key", [settings.secret("pii_key")], settings.secret("blind_index_key")
    )
    crypto.configure(rotated)
    try:
        async with owner_engine.connect() as conn:
            phones = await conn.scalar(
                text("SELECT count(*) FROM users WHERE phone_encrypted IS NOT NULL")
            )
        # The event, the check, and the iiko integration's apiLogin and webhook token too.
        assert await reencrypt(runtime.db) == phones + 3
        assert await reencrypt(runtime.db) == 0
        async with owner_engine.connect() as conn:
            sealed = list(await conn.scalars(text(SECRETS)))
        assert len(sealed) == 4
        assert [s for s in sealed if rotated.needs_rotation(s)] == []
    finally:
        crypto.configure(original)


async def _erase(till: Till, auth: TokenFactory, person: uuid.UUID) -> None:
    guest = await auth(Role.GUEST, till.shop.tenant.id, subject=person)
    assert (await till.client.post("/api/me/erase", headers=guest)).status_code == 204


async def test_erasure_clears_the_persons_iiko_events(
    make_till: TillFactory, runtime: Runtime, auth: TokenFactory, owner_engine: AsyncEngine
) -> None:
    till = await make_till("IIKO", credentials={"api_login": "login"})
    member = await till.guest(runtime, PHONE)
    by_phone, by_card, open_bill, strangers = order_id(), order_id(), order_id(), order_id()
    card = [{"key": "maxloyalty.card", "value": member.code}]
    await _delivered(
        till,
        runtime,
        [
            delivery_event(by_phone, phone="8 925 123-45-67"),
            delivery_event(by_card, phone="not a phone", external=card),
            table_event(open_bill, phone=PHONE, status="Bill"),  # no card matched: by phone
            delivery_event(strangers, phone="+79990001122"),
        ],
    )
    guest = await auth(Role.GUEST, till.shop.tenant.id, subject=member.user_id)
    exported = (await till.client.get("/api/me/data", headers=guest)).json()
    (network,) = exported["networks"]
    assert sorted(o["order_id"] for o in network["pos_orders"]) == sorted(
        [by_phone, by_card, open_bill]
    )

    await _erase(till, auth, member.user_id)

    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT external_id, personal IS NULL, phone_hash IS NULL, card_id FROM pos_events"
            )
        )
        stored = {order: (erased, unindexed, card_id) for order, erased, unindexed, card_id in rows}
    assert stored == {
        by_phone: (True, True, member.id),
        by_card: (True, True, member.id),
        open_bill: (True, True, None),
        strangers: (False, False, None),
    }
    # A replay can no longer tell whose order it was.
    events = await till.client.get(
        f"/api/pos/integrations/{till.integration['id']}/events", headers=till.admin
    )
    (bill,) = [e for e in events.json()["items"] if e["external_id"] == open_bill]
    replay = f"/api/pos/integrations/{till.integration['id']}/events/{bill['id']}/replay"
    assert (await till.client.post(replay, headers=till.admin)).json()["detail"] == (
        "the order is Bill, not Closed"
    )


async def test_erasure_clears_the_xml_of_the_persons_checks(
    make_till: TillFactory, runtime: Runtime, auth: TokenFactory, owner_engine: AsyncEngine
) -> None:
    till = await make_till("RKEEPER", external_id="12")
    other = await till.guest(runtime)
    for card, check in ((till.shop.card, 1), (other, 2)):
        xml = check_xml((number_of(card), 3, 100000), check=check)
        assert (await post(till, xml))["Result"] == "0"
    checks = "SELECT card_id, raw IS NULL, check_amount, points_accrued FROM pos_transactions"
    async with owner_engine.connect() as conn:
        before = {row[0]: row[2:] for row in await conn.execute(text(checks))}

    await _erase(till, auth, till.shop.guest_id)

    async with owner_engine.connect() as conn:
        after = {row[0]: row[1:] for row in await conn.execute(text(checks))}
    assert after == {
        till.shop.card.id: (True, *before[till.shop.card.id]),  # the figures stay
        other.id: (False, *before[other.id]),
    }
    async with runtime.db.transaction(till.shop.tenant.id) as session:
        _, mismatches = await verify_tenant(session)
    assert mismatches == []
