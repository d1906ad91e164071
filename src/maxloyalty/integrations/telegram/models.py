"""A network's own Telegram bot, and the guests who talk to it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, ForeignKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.crypto import EncryptedText
from maxloyalty.kit.models import Base, TenantOwned, Timestamps, UUIDPrimaryKey


class TelegramBot(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    """One bot per network. Its token and the webhook's secret are stored encrypted; a bot
    can point its webhook at one address only, so it serves one network."""

    __tablename__ = "telegram_bots"
    __table_args__ = (UniqueConstraint("tenant_id"), UniqueConstraint("bot_id"))

    bot_id: Mapped[int] = mapped_column(BigInteger)
    username: Mapped[str] = mapped_column(String(64))
    token: Mapped[str] = mapped_column(EncryptedText(400))
    webhook_secret: Mapped[str] = mapped_column(EncryptedText(400))
    # Where Telegram was told to send updates; None until it accepted (or after polling).
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    menu_button_set: Mapped[bool] = mapped_column(default=False)
    # What Telegram said when it refused the webhook or the menu button (no personal data).
    setup_error: Mapped[str | None] = mapped_column(String(500))
    connected_at: Mapped[datetime] = mapped_column(default=utcnow)
    connected_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))


class TelegramChat(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    """A Telegram user who started the network's bot: where to write to them, the deep
    link they came by (kept for the referral programme) and, once known, the guest."""

    __tablename__ = "telegram_chats"
    __table_args__ = (
        UniqueConstraint("tenant_id", "telegram_user_id"),
        ForeignKeyConstraint(
            ["tenant_id", "restaurant_id"],
            ["restaurants.tenant_id", "restaurants.id"],
            name="fk_telegram_chats_restaurant",
        ),
    )

    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    language_code: Mapped[str | None] = mapped_column(String(16))
    # The first referral code a guest came with stays theirs; the restaurant is the latest.
    referral_code: Mapped[str | None] = mapped_column(String(32))
    restaurant_id: Mapped[uuid.UUID | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Telegram answered 403: the guest blocked the bot. Cleared when they write again.
    blocked_at: Mapped[datetime | None]
