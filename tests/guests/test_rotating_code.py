"""The guest app's rotating card code and QR: issued per minute to the card's own guest,
idempotent within the minute, never equal to a code another card answers to, pruned."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy import func, select, update

from maxloyalty.guests import tasks
from maxloyalty.guests.models import CardRotatingCode, GuestCard
from maxloyalty.guests.service import cards, rotating
from maxloyalty.identity.principal import Role
from maxloyalty.kit import jobs
from maxloyalty.kit.signing import RotatingCodes, window_of
from maxloyalty.runtime import Runtime
from tests.conftest import TokenFactory
from tests.factories import make_guest
from tests.ledger.conftest import Shop
from tests.test_app import assert_problem


async def fetch(shop: Shop, headers: dict[str, str], card_id: uuid.UUID | None = None) -> Any:
    return await shop.client.get(
        f"/api/cards/{card_id or shop.card.id}/rotating-code", headers=headers
    )


async def issued(shop: Shop, headers: dict[str, str], card_id: uuid.UUID | None = None) -> Any:
    answer = await fetch(shop, headers, card_id)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def identify(shop: Shop, **by: object) -> httpx.Response:
    return await shop.client.post(
        "/api/cards/identify",
        json={"restaurant_id": str(shop.restaurant.id)} | by,
        headers=shop.cashier,
    )


async def rows_of(runtime: Runtime, shop: Shop) -> list[CardRotatingCode]:
    async with runtime.db.transaction(shop.tenant.id) as session:
        return list(await session.scalars(select(CardRotatingCode)))


async def test_a_code_works_in_its_minute_and_not_after(
    make_shop: Any, runtime: Runtime, auth: TokenFactory, in_a_window: datetime
) -> None:
    shop: Shop = await make_shop()
    guest = await auth(Role.GUEST, shop.tenant.id, subject=shop.guest_id)
    answer = await fetch(shop, guest)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    first = answer.json()
    assert first["code"].isdigit()
    assert len(first["code"]) == 6
    assert first["code"] != shop.card.code
    assert first["qr"].startswith("ML2.")
    assert first["expires_at"] == (in_a_window + timedelta(seconds=55)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    assert first["valid_seconds"] == 55
    # Asked again in the same window: the same code, and still one row.
    assert await issued(shop, guest) == first
    assert len(await rows_of(runtime, shop)) == 1

    by_code = await identify(shop, code=first["code"])
    assert by_code.status_code == 200, by_code.text
    assert by_code.json()["card_id"] == str(shop.card.id)
    by_qr = await identify(shop, qr=first["qr"])
    assert by_qr.json()["card_id"] == str(shop.card.id)
    # The static code still works beside it.
    assert (await identify(shop, code=shop.card.code)).json()["card_id"] == str(shop.card.id)

    with time_machine.travel(in_a_window + timedelta(seconds=60), tick=False):
        assert_problem(await identify(shop, code=first["code"]), 404, "card_not_found")
        assert_problem(await identify(shop, qr=first["qr"]), 422, "qr_expired")
        later = await issued(shop, guest)
        assert later["qr"] != first["qr"]
        assert later["valid_seconds"] == 55
        assert (await identify(shop, qr=later["qr"])).json()["card_id"] == str(shop.card.id)
    assert len(await rows_of(runtime, shop)) == 2


async def test_only_the_cards_own_guest_gets_its_code(
    make_shop: Any, runtime: Runtime, auth: TokenFactory
) -> None:
    shop: Shop = await make_shop()
    foreign: Shop = await make_shop()
    neighbour = await make_guest(runtime, shop.system, restaurant_id=shop.restaurant.id)
    assert_problem(await fetch(shop, shop.cashier), 403, "role_forbidden")
    assert_problem(await fetch(shop, shop.manager), 403, "role_forbidden")
    other_guest = await auth(Role.GUEST, shop.tenant.id, subject=neighbour.user_id)
    assert_problem(await fetch(shop, other_guest), 404, "card_not_found")
    # Another network's guest: row-level security hides the card altogether.
    foreign_guest = await auth(Role.GUEST, foreign.tenant.id, subject=foreign.guest_id)
    assert_problem(await fetch(shop, foreign_guest), 404, "card_not_found")
    assert await rows_of(runtime, shop) == []

    blocked = await shop.client.patch(
        f"/api/cards/{shop.card.id}", json={"status": "BLOCKED"}, headers=shop.manager
    )
    assert blocked.status_code == 200, blocked.text
    guest = await auth(Role.GUEST, shop.tenant.id, subject=shop.guest_id)
    assert_problem(await fetch(shop, guest), 409, "card_blocked")


async def test_a_static_code_equal_to_the_derivation_takes_the_next_one(
    make_shop: Any, runtime: Runtime, auth: TokenFactory, in_a_window: datetime
) -> None:
    shop: Shop = await make_shop()
    window = window_of(in_a_window)
    derived = [runtime.rotating_codes.code(shop.tenant.id, shop.card.id, window, n) for n in (0, 1)]
    other = await make_guest(runtime, shop.system, restaurant_id=shop.restaurant.id)
    async with runtime.db.transaction(shop.tenant.id) as session:
        await session.execute(
            update(GuestCard).where(GuestCard.id == other.id).values(code=derived[0])
        )
    guest = await auth(Role.GUEST, shop.tenant.id, subject=shop.guest_id)
    assert (await issued(shop, guest))["code"] == derived[1]
    # The typed value is the other card's static code, and finds only that card.
    assert (await identify(shop, code=derived[0])).json()["card_id"] == str(other.id)
    assert (await identify(shop, code=derived[1])).json()["card_id"] == str(shop.card.id)


async def test_two_cards_deriving_one_value_get_different_codes(
    make_shop: Any,
    runtime: Runtime,
    auth: TokenFactory,
    in_a_window: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop: Shop = await make_shop()
    other = await make_guest(runtime, shop.system, restaurant_id=shop.restaurant.id)
    real = RotatingCodes.code

    def colliding(
        self: RotatingCodes, tenant_id: uuid.UUID, card_id: uuid.UUID, window: int, counter: int = 0
    ) -> str:
        # Every card's first derivation is one value; later ones stay per card.
        return "424242" if counter == 0 else real(self, tenant_id, card_id, window, counter)

    monkeypatch.setattr(RotatingCodes, "code", colliding)
    mine = await issued(shop, await auth(Role.GUEST, shop.tenant.id, subject=shop.guest_id))
    theirs = await issued(
        shop, await auth(Role.GUEST, shop.tenant.id, subject=other.user_id), other.id
    )
    assert mine["code"] == "424242"
    window = window_of(in_a_window)
    assert theirs["code"] == real(runtime.rotating_codes, shop.tenant.id, other.id, window, 1)
    assert (await identify(shop, code="424242")).json()["card_id"] == str(shop.card.id)
    assert (await identify(shop, code=theirs["code"])).json()["card_id"] == str(other.id)


async def test_no_free_derivation_is_a_503(
    make_shop: Any, runtime: Runtime, auth: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop: Shop = await make_shop()
    taken = shop.card.code  # the card's own static code: never a rotating one
    monkeypatch.setattr(RotatingCodes, "code", lambda *args, **kwargs: taken)
    guest = await auth(Role.GUEST, shop.tenant.id, subject=shop.guest_id)
    assert_problem(await fetch(shop, guest), 503, "code_space_exhausted")
    assert await rows_of(runtime, shop) == []


async def test_a_new_card_never_takes_a_code_shown_this_minute(
    make_shop: Any,
    runtime: Runtime,
    auth: TokenFactory,
    in_a_window: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop: Shop = await make_shop()
    guest = await auth(Role.GUEST, shop.tenant.id, subject=shop.guest_id)
    shown = (await issued(shop, guest))["code"]
    draws = iter([int(shown), 777_777])
    monkeypatch.setattr(cards.secrets, "randbelow", lambda _: next(draws))
    card = await make_guest(runtime, shop.system, restaurant_id=shop.restaurant.id)
    assert card.code == "777777"


async def test_past_windows_are_pruned(
    make_shop: Any, runtime: Runtime, auth: TokenFactory, in_a_window: datetime
) -> None:
    shop: Shop = await make_shop()
    foreign: Shop = await make_shop()
    for where in (shop, foreign):
        await issued(where, await auth(Role.GUEST, where.tenant.id, subject=where.guest_id))
    assert await rotating.prune(runtime.db, in_a_window) == 0  # the window is still open
    assert await rotating.prune(runtime.db, in_a_window + timedelta(seconds=55)) == 2
    # The periodic job does the same with the clock's time.
    await issued(shop, await auth(Role.GUEST, shop.tenant.id, subject=shop.guest_id))
    assert jobs.registry.schedules[tasks.PRUNE_ROTATING_CODES_JOB] == "*/10 * * * *"
    with time_machine.travel(in_a_window + timedelta(seconds=60), tick=False):
        await tasks.prune_rotating_codes(runtime.job_context(), {})
    async with runtime.db.platform_session() as platform:
        assert await platform.scalar(select(func.count()).select_from(CardRotatingCode)) == 0
