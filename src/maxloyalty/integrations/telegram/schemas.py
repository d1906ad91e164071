from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from maxloyalty.kit.schemas import Strict
from maxloyalty.kit.timestamps import Timestamp


class BotConnect(Strict):
    token: SecretStr = Field(
        min_length=1, max_length=200, description="The token @BotFather gave (`123456:ABC…`)"
    )


class BotStatus(BaseModel):
    """The connected bot, never its token."""

    bot_id: int
    username: str
    connected_at: Timestamp
    webhook_set: bool = Field(description="Telegram accepted the webhook to this platform")
    webhook_url: str | None
    menu_button_set: bool = Field(description="The chat's menu button opens the Mini App")
    setup_error: str | None = Field(
        description="What Telegram said when it refused the webhook or the menu button"
    )
    mini_app_url: str
