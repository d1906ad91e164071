"""Refusals about a network's Telegram bot."""

from __future__ import annotations

from maxloyalty.kit.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable


class TelegramBotNotFound(NotFound):
    code = "telegram_bot_not_found"
    message = "No Telegram bot is connected to this network."


class TelegramBotTaken(Conflict):
    code = "telegram_bot_taken"
    message = "This bot is connected to another network."


class TelegramSecretInvalid(Forbidden):
    code = "telegram_secret_invalid"
    message = "The secret token is missing or wrong."


class TelegramTokenInvalid(Invalid):
    code = "telegram_token_invalid"
    message = "Telegram does not accept this bot token."


class TelegramUnavailable(Unavailable):
    code = "telegram_unavailable"
    message = "Telegram could not be reached; try again later."
