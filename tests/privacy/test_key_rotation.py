"""Rotating the PII key: old values stay readable, `pii reencrypt` moves them to the new key."""

from __future__ import annotations

from sqlalchemy import select, text

from maxloyalty.identity.models import User
from maxloyalty.kit import crypto
from maxloyalty.privacy.service.key_rotation import reencrypt
from maxloyalty.runtime import Runtime
from tests.factories import make_guest, make_program, make_tenant


async def test_reencrypt_moves_values_to_the_current_key(runtime: Runtime) -> None:
    settings = runtime.settings
    old = settings.secret("pii_key")
    tenant = await make_tenant(runtime)
    await make_guest(runtime, await make_program(runtime, tenant), phone="+79261234567")
    rotated = crypto.Keyring("a-brand-new-pii-key", [old], settings.secret("blind_index_key"))
    original = crypto.keyring()
    crypto.configure(rotated)
    try:
        async with runtime.db.transaction() as session:
            raw = await session.scalar(text("SELECT phone_encrypted FROM users"))
        assert rotated.needs_rotation(raw)
        assert await reencrypt(runtime.db) == 1
        assert await reencrypt(runtime.db) == 0  # nothing left on the old key
        async with runtime.db.transaction() as session:
            raw = await session.scalar(text("SELECT phone_encrypted FROM users"))
            user = await session.scalar(select(User))
        assert not rotated.needs_rotation(raw)
        assert user is not None
        assert user.phone == "+79261234567"
        # Without the old key the new value still reads: the old key can be dropped.
        crypto.configure(
            crypto.Keyring("a-brand-new-pii-key", [], settings.secret("blind_index_key"))
        )
        async with runtime.db.transaction() as session:
            user = await session.scalar(select(User).execution_options(populate_existing=True))
        assert user is not None
        assert user.phone == "+79261234567"
    finally:
        crypto.configure(original)
