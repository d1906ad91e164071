"""The guest's personal data in what tills sent: moved to a new PII key by `pii reencrypt`."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from maxloyalty.identity.pii_rotation import reencrypt
from maxloyalty.kit import crypto
from maxloyalty.runtime import Runtime
from tests.integrations.pos.conftest import Till, TillFactory
from tests.integrations.pos.test_iiko import _delivered, delivery_event, order_id
from tests.integrations.pos.test_rkeeper import check_xml, number_of, post

PHONE = "+79251234567"
SECRETS = (
    "SELECT personal FROM pos_events WHERE personal IS NOT NULL"
    " UNION ALL SELECT raw FROM pos_transactions WHERE raw IS NOT NULL"
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
        assert await reencrypt(runtime.db) == phones + 2  # the event and the check too
        assert await reencrypt(runtime.db) == 0
        async with owner_engine.connect() as conn:
            sealed = list(await conn.scalars(text(SECRETS)))
        assert len(sealed) == 2
        assert [s for s in sealed if rotated.needs_rotation(s)] == []
    finally:
        crypto.configure(original)
