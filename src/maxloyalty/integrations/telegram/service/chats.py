"""The guests who write to a network's bot: their chat, the deep link they came by, their
phone shared as a contact, and what their cards hold.

Sharing a contact links a phone only when it is the sender's own (`contact.user_id` is the
sender, so Telegram vouches that the number is their account's). Then:
- nobody has the phone or the Telegram account yet: a guest is created with both, as the
  Mini App sign-in creates one, and gets the network's card;
- the Telegram account's guest has no phone yet: it gets this one;
- the phone's guest (say, registered at the till) has no Telegram account yet: it gets this
  one, so the card issued at the till shows up in Telegram;
- the phone is another account's (one with another Telegram account, or the sender's
  account differs from the phone's): nothing is linked, the answer says so — two accounts
  are never merged from a chat, and no phone moves between people;
- the sender's account already has a different phone: it keeps it (a phone is a sign-in
  credential; changing it is not a chat's business).
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass
from typing import Any

from aiogram.types import Contact
from aiogram.types import User as TelegramUser
from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.guests.errors import GuestBlocked
from maxloyalty.guests.models import CardStatus, GuestCard
from maxloyalty.guests.service.sign_in import join_as_guest
from maxloyalty.identity.errors import AccountBlocked, InvalidPhone
from maxloyalty.identity.models import User
from maxloyalty.identity.principal import Role
from maxloyalty.identity.service.contacts import normalize_phone, phone_index
from maxloyalty.integrations.telegram.models import TelegramChat
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.db import for_update
from maxloyalty.kit.ids import uuid7
from maxloyalty.kit.timestamps import rfc3339, rfc3339_or_none
from maxloyalty.loyalty.models import LoyaltyLevel
from maxloyalty.network.models import Restaurant

# Deep-link payloads (`t.me/<bot>?start=<payload>`): a restaurant or a referral code.
_RESTAURANT = re.compile(r"r_([0-9A-Fa-f]{32}|[0-9A-Fa-f-]{36})")
_REFERRAL = re.compile(r"ref_([A-Za-z0-9_-]{1,32})")


async def seen(
    session: AsyncSession, tenant_id: uuid.UUID, sender: TelegramUser, chat_id: int
) -> TelegramChat:
    """The sender's chat row, created on their first message; writing again means they no
    longer block the bot."""
    await session.execute(
        pg_insert(TelegramChat)
        .values(
            id=uuid7(),
            tenant_id=tenant_id,
            telegram_user_id=sender.id,
            chat_id=chat_id,
            language_code=sender.language_code,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "telegram_user_id"])
    )
    chat = await session.scalar(
        for_update(select(TelegramChat).where(TelegramChat.telegram_user_id == sender.id))
    )
    assert chat is not None
    chat.chat_id = chat_id
    chat.language_code = sender.language_code
    chat.blocked_at = None
    if chat.user_id is None:
        chat.user_id = await session.scalar(select(User.id).where(User.telegram_id == sender.id))
    return chat


async def remember_start(session: AsyncSession, chat: TelegramChat, payload: str | None) -> None:
    """Keep what a deep link says, for the referral programme; junk is ignored. The first
    referral code a guest came by stays; the restaurant is the one they came by last."""
    if not payload:
        return
    if (found := _RESTAURANT.fullmatch(payload)) is not None:
        restaurant_id = uuid.UUID(found.group(1))
        if await session.get(Restaurant, restaurant_id) is not None:  # this network's only
            chat.restaurant_id = restaurant_id
    elif (found := _REFERRAL.fullmatch(payload)) is not None and chat.referral_code is None:
        chat.referral_code = found.group(1)
    await session.flush()


def mark_blocked(chat: TelegramChat) -> None:
    chat.blocked_at = utcnow()


class Linked(enum.Enum):
    LINKED = "linked"
    ALREADY = "already"  # this phone was this account's already
    NOT_OWN = "not_own"  # someone else's contact
    INVALID_PHONE = "invalid_phone"
    ELSEWHERE = "elsewhere"  # the phone is another account's
    OTHER_PHONE = "other_phone"  # the sender's account has another phone
    BLOCKED = "blocked"  # the account or its membership here is blocked


def _e164(raw: str) -> str:
    # Telegram sends the number's digits with its country code, usually without the plus.
    return normalize_phone(raw if raw.startswith("+") else f"+{raw}")


async def _user(session: AsyncSession, where: ColumnElement[bool]) -> User | None:
    user: User | None = await session.scalar(for_update(select(User).where(where)))
    return user


async def link_contact(
    session: AsyncSession, chat: TelegramChat, sender_id: int, contact: Contact
) -> Linked:
    """Link a shared contact's phone to the sender's guest (the module's rules)."""
    if contact.user_id != sender_id:
        return Linked.NOT_OWN
    try:
        e164 = _e164(contact.phone_number)
    except InvalidPhone:
        return Linked.INVALID_PHONE
    index = phone_index(e164)
    by_telegram = await _user(session, User.telegram_id == sender_id)
    by_phone = await _user(session, User.phone_hash == index)
    if by_telegram is not None and by_phone is not None and by_telegram.id != by_phone.id:
        return Linked.ELSEWHERE
    if by_telegram is None and by_phone is not None and by_phone.telegram_id is not None:
        return Linked.ELSEWHERE
    if by_phone is None and by_telegram is not None and by_telegram.phone_hash is not None:
        return Linked.OTHER_PHONE
    outcome = Linked.ALREADY if by_telegram is not None and by_phone is not None else Linked.LINKED
    try:
        # One savepoint: a refusal (a concurrent link, a blocked guest) leaves nothing behind.
        async with session.begin_nested():
            user = by_telegram or by_phone or User(role=Role.GUEST)
            created = user.id is None
            if created:
                session.add(user)
            user.telegram_id = sender_id
            user.phone, user.phone_hash = e164, index
            user.phone_verified = True
            await session.flush()
            if created:
                await record(session, "user.created", "user", user.id, after={"role": "GUEST"})
            await join_as_guest(session, user, chat.tenant_id, "telegram_bot")
    except IntegrityError:
        # A concurrent update took the phone or the Telegram account first.
        return Linked.ELSEWHERE
    except (AccountBlocked, GuestBlocked):
        return Linked.BLOCKED
    chat.user_id = user.id
    await session.flush()
    if outcome is Linked.LINKED:
        await record(session, "telegram.contact_linked", "user", user.id)
    return outcome


@dataclass(frozen=True)
class CardView:
    code: str
    level: str | None
    balance: int
    pending: int
    restaurant: str | None
    status: CardStatus


async def cards_of(session: AsyncSession, sender_id: int) -> list[CardView]:
    """The sender's cards in this network (none when Telegram knows no guest of theirs)."""
    rows = await session.execute(
        select(GuestCard, LoyaltyLevel.name, Restaurant.name)
        .join(User, User.id == GuestCard.user_id)
        .outerjoin(LoyaltyLevel, LoyaltyLevel.id == GuestCard.level_id)
        .outerjoin(Restaurant, Restaurant.id == GuestCard.restaurant_id)
        .where(User.telegram_id == sender_id, GuestCard.status != CardStatus.DELETED)
        .order_by(GuestCard.id)
    )
    return [
        CardView(card.code, level, card.balance, card.pending_balance, restaurant, card.status)
        for card, level, restaurant in rows.all()
    ]


# --- the person's rights (privacy) --------------------------------------------------------


def _chats_of(user_id: uuid.UUID, telegram_id: int | None) -> ColumnElement[bool]:
    # A chat whose guest was never linked is still the person's, by their Telegram id.
    mine = TelegramChat.user_id == user_id
    return mine if telegram_id is None else or_(mine, TelegramChat.telegram_user_id == telegram_id)


async def personal_chats(
    session: AsyncSession, user_id: uuid.UUID, telegram_id: int | None
) -> list[dict[str, Any]]:
    chats = await session.scalars(
        select(TelegramChat).where(_chats_of(user_id, telegram_id)).order_by(TelegramChat.id)
    )
    return [
        {
            "telegram_user_id": chat.telegram_user_id,
            "language_code": chat.language_code,
            "referral_code": chat.referral_code,
            "restaurant_id": str(chat.restaurant_id) if chat.restaurant_id else None,
            "started_at": rfc3339(chat.started_at),
            "blocked_at": rfc3339_or_none(chat.blocked_at),
        }
        for chat in chats
    ]


async def forget_person(session: AsyncSession, user_id: uuid.UUID, telegram_id: int | None) -> None:
    """Erasure: the person's chat with the network's bot goes, with the link they came by."""
    await session.execute(
        delete(TelegramChat)
        .where(_chats_of(user_id, telegram_id))
        .execution_options(synchronize_session=False)
    )
