"""Updates at the webhook: the secret, /start with deep links, a shared contact, /card,
/balance, help for anything else, and Telegram's 429 and 403 on the answers."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from maxloyalty.guests.models import GuestCard
from maxloyalty.identity.models import User, UserRole
from maxloyalty.identity.principal import Role
from maxloyalty.identity.service.contacts import phone_index
from maxloyalty.integrations.telegram.models import TelegramChat
from maxloyalty.runtime import Runtime
from tests.factories import make_guest, make_tenant
from tests.integrations.telegram.conftest import GUEST_ID, Network, message, post_update
from tests.integrations.telegram.fake_bot_api import BLOCKED, FakeBotApi, too_many
from tests.test_app import assert_problem

PHONE = "79251234567"
E164 = "+79251234567"


def own_contact(sender: int = GUEST_ID, phone: str = PHONE) -> dict[str, Any]:
    return {"phone_number": phone, "first_name": "Иван", "user_id": sender}


async def chat_row(runtime: Runtime, network: Network, sender: int = GUEST_ID) -> TelegramChat:
    async with runtime.db.transaction(network.tenant.id) as session:
        chat = await session.scalar(
            select(TelegramChat).where(TelegramChat.telegram_user_id == sender)
        )
    assert chat is not None
    return chat


async def test_updates_without_the_secret_are_refused_and_do_nothing(
    client: httpx.AsyncClient, runtime: Runtime, connected: Network, bot_api: FakeBotApi
) -> None:
    update = message("/start")
    wrong: list[str | bytes] = ["", "wrong", connected.secret[:-1], connected.secret + "x"]
    for secret in [*wrong, "секрет".encode()]:
        assert_problem(
            await post_update(client, connected, update, secret), 403, "telegram_secret_invalid"
        )
    missing = await client.post(f"/api/telegram/{connected.tenant.slug}/webhook", json=update)
    assert_problem(missing, 403, "telegram_secret_invalid")
    # Another network's slug with this network's secret, and a network that does not exist.
    other = await make_tenant(runtime)
    for slug in (other.slug, "no-such-network"):
        answer = await client.post(
            f"/api/telegram/{slug}/webhook",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": connected.secret},
        )
        assert_problem(answer, 403, "telegram_secret_invalid")
    assert bot_api.calls() == []
    async with runtime.db.transaction(connected.tenant.id) as session:
        assert list(await session.scalars(select(TelegramChat))) == []


async def test_start_with_a_referral_link_greets_and_keeps_the_code(
    client: httpx.AsyncClient, runtime: Runtime, connected: Network, bot_api: FakeBotApi
) -> None:
    answer = await post_update(client, connected, message("/start ref_ABC"))

    assert answer.status_code == 204, answer.text
    greeting, prompt = bot_api.sent()
    assert greeting["chat_id"] == str(GUEST_ID)
    assert "Гриль Хаус" in greeting["text"]
    [[button]] = greeting["reply_markup"]["inline_keyboard"]
    app_url = f"{runtime.settings.public_url}/app/{connected.tenant.slug}"
    assert button == {"text": "Открыть карту", "web_app": {"url": app_url}}
    [[share]] = prompt["reply_markup"]["keyboard"]
    assert share["request_contact"] is True
    chat = await chat_row(runtime, connected)
    assert (chat.referral_code, chat.chat_id, chat.user_id) == ("ABC", GUEST_ID, None)

    # A later link does not take over the first referral; a restaurant's link is kept too.
    restaurant = connected.restaurant.id
    await post_update(client, connected, message(f"/start r_{restaurant.hex}"))
    await post_update(client, connected, message("/start ref_OTHER"))
    chat = await chat_row(runtime, connected)
    assert (chat.referral_code, chat.restaurant_id) == ("ABC", restaurant)


async def test_junk_deep_links_are_ignored(
    client: httpx.AsyncClient, runtime: Runtime, connected: Network, bot_api: FakeBotApi
) -> None:
    other = await make_tenant(runtime)
    for payload in ("r_not-a-uuid", f"r_{other.id}", "ref_", "ref_" + "A" * 40, "hello"):
        answer = await post_update(client, connected, message(f"/start {payload}"))
        assert answer.status_code == 204
    chat = await chat_row(runtime, connected)
    assert (chat.referral_code, chat.restaurant_id) == (None, None)
    assert len(bot_api.sent()) == 10  # still greeted, each time


async def test_english_speakers_are_answered_in_english(
    client: httpx.AsyncClient, connected: Network, bot_api: FakeBotApi
) -> None:
    await post_update(client, connected, message("/start", language="en"))
    greeting, prompt = bot_api.sent()
    assert greeting["text"].startswith("Hello!")
    assert prompt["reply_markup"]["keyboard"][0][0]["text"] == "Share phone number"
    assert greeting["reply_markup"]["inline_keyboard"][0][0]["text"] == "Open card"


async def test_own_contact_creates_the_guest_with_a_card(
    client: httpx.AsyncClient, runtime: Runtime, connected: Network, bot_api: FakeBotApi
) -> None:
    await post_update(client, connected, message("/start"))
    bot_api.requests.clear()

    answer = await post_update(client, connected, message(contact=own_contact()))

    assert answer.status_code == 204
    [reply] = bot_api.sent()
    assert reply["text"] == "Готово: номер привязан, карта ваша."
    assert reply["reply_markup"] == {"remove_keyboard": True}
    async with runtime.db.transaction(connected.tenant.id) as session:
        user = await session.scalar(select(User).where(User.telegram_id == GUEST_ID))
        assert user is not None
        assert (user.phone, user.phone_hash, user.phone_verified) == (
            E164,
            phone_index(E164),
            True,
        )
        card = await session.scalar(select(GuestCard).where(GuestCard.user_id == user.id))
        assert card is not None
        assert card.registration_source.value == "TELEGRAM"
        roles = list(
            await session.scalars(select(UserRole.role).where(UserRole.user_id == user.id))
        )
        assert roles == [Role.GUEST]
    assert (await chat_row(runtime, connected)).user_id == user.id

    bot_api.requests.clear()
    await post_update(client, connected, message("/card"))
    [reply] = bot_api.sent()
    assert reply["text"] == f"Карта {card.code}, уровень BRONZE"


async def test_a_forged_contact_links_nothing(
    client: httpx.AsyncClient, runtime: Runtime, connected: Network, bot_api: FakeBotApi
) -> None:
    forged = own_contact(sender=GUEST_ID + 1)
    no_user = {"phone_number": PHONE, "first_name": "Пётр"}  # a contact from the address book

    for contact in (forged, no_user):
        answer = await post_update(client, connected, message(contact=contact))
        assert answer.status_code == 204

    assert [m["text"] for m in bot_api.sent()] == [
        "Пожалуйста, поделитесь своим номером кнопкой «Поделиться номером».",
    ] * 2
    async with runtime.db.transaction(connected.tenant.id) as session:
        assert (
            await session.scalar(select(User).where(User.phone_hash == phone_index(E164))) is None
        )
        assert await session.scalar(select(User).where(User.telegram_id == GUEST_ID)) is None
    assert (await chat_row(runtime, connected)).user_id is None


async def test_a_guest_of_the_till_gets_their_card_in_telegram(
    client: httpx.AsyncClient, runtime: Runtime, connected: Network, bot_api: FakeBotApi
) -> None:
    card = await make_guest(runtime, connected.system, phone=E164)

    await post_update(client, connected, message(contact=own_contact(phone="+" + PHONE)))

    async with runtime.db.transaction(connected.tenant.id) as session:
        user = await session.get(User, card.user_id)
        assert user is not None
        assert user.telegram_id == GUEST_ID
        cards = list(await session.scalars(select(GuestCard).where(GuestCard.user_id == user.id)))
    assert [c.id for c in cards] == [card.id]  # the till's card, no second one
    bot_api.requests.clear()
    await post_update(client, connected, message("/balance"))
    assert [m["text"] for m in bot_api.sent()] == ["Баланс: 0 баллов"]


async def test_a_phone_of_another_account_is_not_taken(
    client: httpx.AsyncClient, runtime: Runtime, connected: Network, bot_api: FakeBotApi
) -> None:
    card = await make_guest(runtime, connected.system, phone=E164)
    async with runtime.db.transaction(connected.tenant.id) as session:
        owner = await session.get(User, card.user_id)
        assert owner is not None
        owner.telegram_id = 42  # the phone's owner uses another Telegram account

    await post_update(client, connected, message(contact=own_contact()))

    [reply] = bot_api.sent()
    assert reply["text"].startswith("Этот номер привязан к другому аккаунту.")
    async with runtime.db.transaction(connected.tenant.id) as session:
        owner = await session.get(User, card.user_id)
        assert owner is not None
        assert owner.telegram_id == 42
        assert await session.scalar(select(User).where(User.telegram_id == GUEST_ID)) is None


async def test_an_account_keeps_its_phone_and_a_blocked_guest_is_told(
    client: httpx.AsyncClient, runtime: Runtime, connected: Network, bot_api: FakeBotApi
) -> None:
    card = await make_guest(runtime, connected.system, phone="+79161112233")
    async with runtime.db.transaction(connected.tenant.id) as session:
        user = await session.get(User, card.user_id)
        assert user is not None
        user.telegram_id = GUEST_ID

    for contact in (own_contact(), own_contact(phone="12")):
        await post_update(client, connected, message(contact=contact))
    async with runtime.db.transaction(connected.tenant.id) as session:
        user = await session.get(User, card.user_id)
        assert user is not None
        assert user.phone == "+79161112233"
        role = await session.scalar(select(UserRole).where(UserRole.user_id == user.id))
        assert role is not None
        role.is_active = False  # the network blocked this guest
        user.phone = user.phone_hash = None
    await post_update(client, connected, message(contact=own_contact()))

    assert [m["text"] for m in bot_api.sent()] == [
        "К вашему аккаунту уже привязан другой номер; он остаётся.",
        "Не удалось распознать номер телефона.",
        "Ваша карта в этой сети заблокирована. Обратитесь в ресторан.",
    ]
    async with runtime.db.transaction(connected.tenant.id) as session:
        user = await session.get(User, card.user_id)
        assert user is not None
        assert user.phone_hash is None  # nothing linked for a blocked guest


async def test_balance_with_pending_points_and_without_a_card(
    client: httpx.AsyncClient, runtime: Runtime, connected: Network, bot_api: FakeBotApi
) -> None:
    await post_update(client, connected, message("/balance"))
    await post_update(client, connected, message("/card", language="en"))
    assert [m["text"] for m in bot_api.sent()] == [
        "У вас ещё нет карты. Откройте приложение кнопкой «Открыть карту»"
        " или поделитесь номером телефона: /start",
        "You have no card yet. Open the app with «Open card» or share your phone number: /start",
    ]

    card = await make_guest(runtime, connected.system, phone=E164)
    async with runtime.db.transaction(connected.tenant.id) as session:
        row = await session.get(GuestCard, card.id)
        user = await session.get(User, card.user_id)
        assert row is not None
        assert user is not None
        # The cache the ledger keeps; set directly, as the ledger's own tests cover booking.
        row.balance, row.pending_balance = 1250, 300
        user.telegram_id = GUEST_ID
    bot_api.requests.clear()
    await post_update(client, connected, message("/balance"))
    assert [m["text"] for m in bot_api.sent()] == ["Баланс: 1250 баллов (ещё 300 начислятся позже)"]


async def test_anything_else_gets_help(
    client: httpx.AsyncClient, connected: Network, bot_api: FakeBotApi
) -> None:
    for update in (message("привет"), message("/unknown"), message(None)):
        answer = await post_update(client, connected, update)
        assert answer.status_code == 204
    texts = [m["text"] for m in bot_api.sent()]
    assert len(texts) == 3
    assert all(t.startswith("Команды:\n/card") for t in texts)


async def test_updates_that_are_not_messages_are_accepted_quietly(
    client: httpx.AsyncClient, connected: Network, bot_api: FakeBotApi
) -> None:
    edited = message("/start")
    edited["edited_message"] = edited.pop("message")
    assert (await post_update(client, connected, edited)).status_code == 204
    group = message("/start")
    group["message"]["chat"] = {"id": -100, "type": "group", "title": "Друзья"}
    assert (await post_update(client, connected, group)).status_code == 204
    assert bot_api.sent() == []
    answer = await post_update(client, connected, {"message": "not an update"})
    assert_problem(answer, 400, "malformed_json")


async def test_429_is_retried_after_the_delay_telegram_names(
    client: httpx.AsyncClient, connected: Network, bot_api: FakeBotApi
) -> None:
    bot_api.plan["sendMessage"] = [too_many(retry_after=1)]
    began = time.monotonic()

    answer = await post_update(client, connected, message("hello"))

    assert answer.status_code == 204
    assert time.monotonic() - began >= 1
    first, second = bot_api.sent()
    assert first == second  # the same message, sent again


async def test_a_long_or_endless_429_is_given_up(
    client: httpx.AsyncClient, connected: Network, bot_api: FakeBotApi
) -> None:
    bot_api.plan["sendMessage"] = [too_many(retry_after=60)]
    answer = await post_update(client, connected, message("hello"))
    assert answer.status_code == 204  # not waited for a minute, and no error either
    assert len(bot_api.sent()) == 1

    bot_api.requests.clear()
    bot_api.plan["sendMessage"] = [too_many(retry_after=1)] * 3
    answer = await post_update(client, connected, message("hello"))
    assert answer.status_code == 204
    assert len(bot_api.sent()) == 3  # three attempts, then it gives up


async def test_a_blocked_bot_is_noted_and_swallowed_without_personal_data_in_logs(
    client: httpx.AsyncClient,
    runtime: Runtime,
    connected: Network,
    bot_api: FakeBotApi,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot_api.plan["sendMessage"] = [BLOCKED]
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        answer = await post_update(client, connected, message("/start ref_ABC"))
        await post_update(client, connected, message(contact=own_contact()))

    assert answer.status_code == 204
    # Blocked at the greeting: the contact request is not sent after it.
    assert len(bot_api.sent()) == 2
    blocked = [entry for entry in logs if entry["event"] == "telegram.chat_blocked"]
    assert blocked == [
        {
            "event": "telegram.chat_blocked",
            "method": "sendMessage",
            "tenant": connected.tenant.slug,
            "log_level": "warning",
        }
    ]
    written = repr(logs) + caplog.text
    assert "Update id=" in caplog.text  # aiogram's own log is looked at too
    for personal in (str(GUEST_ID), PHONE, "Иван"):
        assert personal not in written
    # Writing again (the contact) means the guest unblocked the bot.
    assert (await chat_row(runtime, connected)).blocked_at is None


async def test_a_blocked_chat_stays_noted(
    client: httpx.AsyncClient, runtime: Runtime, connected: Network, bot_api: FakeBotApi
) -> None:
    bot_api.plan["sendMessage"] = [BLOCKED]
    await post_update(client, connected, message("hello"))
    assert (await chat_row(runtime, connected)).blocked_at is not None
