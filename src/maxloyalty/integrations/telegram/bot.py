"""What the network's bot says: aiogram handlers for `/start` (with a deep link), a shared
contact, `/card`, `/balance`, and a short help for anything else. Russian, or English for a
Telegram user whose language is English.

Every update runs in the caller's transaction (`handle_update`): the webhook's request, or
one transaction per update when polling. Answers go out through the Bot API (`deliver`), so
Telegram refusing one never fails the update.
"""

from __future__ import annotations

from aiogram import Bot, Dispatcher, F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.methods import SendMessage
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
    WebAppInfo,
)
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.config import Settings
from maxloyalty.guests.models import CardStatus
from maxloyalty.integrations.telegram.client import Delivery, deliver
from maxloyalty.integrations.telegram.models import TelegramChat
from maxloyalty.integrations.telegram.service import chats
from maxloyalty.integrations.telegram.service.bots import mini_app_url
from maxloyalty.network.models import Tenant

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "greeting": "Здравствуйте! Это программа лояльности «{network}».\n"
        "Откройте свою карту кнопкой ниже.",
        "open_card": "Открыть карту",
        "share_prompt": "Поделитесь номером телефона, чтобы привязать карту"
        " (и ту, что вам выдали в ресторане).",
        "share_button": "Поделиться номером",
        "linked": "Готово: номер привязан, карта ваша.",
        "already": "Этот номер уже привязан к вашей карте.",
        "not_own": "Пожалуйста, поделитесь своим номером кнопкой «Поделиться номером».",
        "invalid_phone": "Не удалось распознать номер телефона.",
        "elsewhere": "Этот номер привязан к другому аккаунту. Войдите по SMS в приложении"
        " или обратитесь в ресторан.",
        "other_phone": "К вашему аккаунту уже привязан другой номер; он остаётся.",
        "blocked": "Ваша карта в этой сети заблокирована. Обратитесь в ресторан.",
        "no_card": "У вас ещё нет карты. Откройте приложение кнопкой «Открыть карту»"
        " или поделитесь номером телефона: /start",
        "card": "Карта {code}, уровень {level}",
        "card_inactive": "Карта {code} заблокирована",
        "balance": "Баланс: {balance} баллов",
        "pending": " (ещё {pending} начислятся позже)",
        "no_level": "—",
        "help": "Команды:\n/card — код карты и уровень\n/balance — баланс баллов\n"
        "/start — открыть карту и привязать номер",
    },
    "en": {
        "greeting": "Hello! This is the «{network}» loyalty programme.\n"
        "Open your card with the button below.",
        "open_card": "Open card",
        "share_prompt": "Share your phone number to link your card"
        " (the one a restaurant gave you too).",
        "share_button": "Share phone number",
        "linked": "Done: your number is linked and the card is yours.",
        "already": "This number is already linked to your card.",
        "not_own": "Please share your own number with the «Share phone number» button.",
        "invalid_phone": "That phone number could not be read.",
        "elsewhere": "This number is linked to another account. Sign in by SMS in the app"
        " or ask the restaurant.",
        "other_phone": "Your account already has another number; it stays.",
        "blocked": "Your card in this network is blocked. Please ask the restaurant.",
        "no_card": "You have no card yet. Open the app with «Open card» or share your"
        " phone number: /start",
        "card": "Card {code}, level {level}",
        "card_inactive": "Card {code} is blocked",
        "balance": "Balance: {balance} points",
        "pending": " ({pending} more to come)",
        "no_level": "—",
        "help": "Commands:\n/card — your card's code and level\n/balance — your points\n"
        "/start — open your card and link your number",
    },
}


def _texts(message: Message) -> dict[str, str]:
    language = (message.from_user.language_code or "") if message.from_user else ""
    return TEXTS["en" if language.lower().startswith("en") else "ru"]


class Reply:
    """Answers to one message, sent in order, stopping once the guest turns out to have
    blocked the bot (noted on their chat)."""

    def __init__(self, bot: Bot, tenant: Tenant, chat: TelegramChat) -> None:
        self.bot, self.tenant, self.chat = bot, tenant, chat

    async def __call__(self, text: str, markup: Markup | None = None) -> None:
        if self.chat.blocked_at is not None:
            return
        method = SendMessage(chat_id=self.chat.chat_id, text=text, reply_markup=markup)
        if await deliver(self.bot, method, tenant=self.tenant.slug) is Delivery.BLOCKED:
            chats.mark_blocked(self.chat)


router = Router(name="maxloyalty")
# Only private chats: a bot added to a group says nothing there.
router.message.filter(F.chat.type == "private", F.from_user.is_not(None))


async def _chat(session: AsyncSession, tenant: Tenant, message: Message) -> TelegramChat:
    assert message.from_user is not None  # the router's filter
    return await chats.seen(session, tenant.id, message.from_user, message.chat.id)


@router.message(CommandStart())
async def start(
    message: Message,
    command: CommandObject,
    bot: Bot,
    session: AsyncSession,
    tenant: Tenant,
    settings: Settings,
) -> None:
    chat = await _chat(session, tenant, message)
    await chats.remember_start(session, chat, command.args)
    texts, reply = _texts(message), Reply(bot, tenant, chat)
    app = WebAppInfo(url=mini_app_url(settings, tenant.slug))
    # A message carries one keyboard: the Mini App's button, then the contact request.
    await reply(
        texts["greeting"].format(network=tenant.name),
        InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text=texts["open_card"], web_app=app)]]
        ),
    )
    await reply(
        texts["share_prompt"],
        ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text=texts["share_button"], request_contact=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        ),
    )


@router.message(F.contact)
async def contact(message: Message, bot: Bot, session: AsyncSession, tenant: Tenant) -> None:
    chat = await _chat(session, tenant, message)
    assert message.from_user is not None
    assert message.contact is not None
    outcome = await chats.link_contact(session, chat, message.from_user.id, message.contact)
    keep_keyboard = outcome in (chats.Linked.NOT_OWN, chats.Linked.INVALID_PHONE)
    await Reply(bot, tenant, chat)(
        _texts(message)[outcome.value], None if keep_keyboard else ReplyKeyboardRemove()
    )


@router.message(Command("card"))
async def card(message: Message, bot: Bot, session: AsyncSession, tenant: Tenant) -> None:
    chat = await _chat(session, tenant, message)
    texts, cards = _texts(message), await chats.cards_of(session, chat.telegram_user_id)
    lines = [
        (texts["card"] if c.status is CardStatus.ACTIVE else texts["card_inactive"]).format(
            code=c.code, level=c.level or texts["no_level"]
        )
        + (f" — {c.restaurant}" if c.restaurant else "")
        for c in cards
    ]
    await Reply(bot, tenant, chat)("\n".join(lines) or texts["no_card"])


@router.message(Command("balance"))
async def balance(message: Message, bot: Bot, session: AsyncSession, tenant: Tenant) -> None:
    chat = await _chat(session, tenant, message)
    texts, cards = _texts(message), await chats.cards_of(session, chat.telegram_user_id)
    lines = [
        texts["balance"].format(balance=c.balance)
        + (texts["pending"].format(pending=c.pending) if c.pending else "")
        + (f" — {c.restaurant}" if c.restaurant else "")
        for c in cards
    ]
    await Reply(bot, tenant, chat)("\n".join(lines) or texts["no_card"])


@router.message()
async def help_message(message: Message, bot: Bot, session: AsyncSession, tenant: Tenant) -> None:
    chat = await _chat(session, tenant, message)
    await Reply(bot, tenant, chat)(_texts(message)["help"])


dispatcher = Dispatcher()
dispatcher.include_router(router)


async def handle_update(
    session: AsyncSession, settings: Settings, tenant: Tenant, bot: Bot, update: Update
) -> None:
    """Run the handlers for one update (other kinds of updates are let be)."""
    await dispatcher.feed_update(bot, update, session=session, tenant=tenant, settings=settings)
