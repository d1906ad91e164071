"""The refusals people meet on the pages, in plain words (English message ids; the Russian
is in the catalogue). A code without its own words gets the general one."""

from __future__ import annotations

from starlette.requests import Request

from maxloyalty.web import i18n


def _(message: str) -> str:
    """Marks a message for extraction; translated when shown."""
    return message


WORDS = {
    "form_invalid": _("Check the highlighted fields."),
    "csrf_failed": _("The page has expired. Reload it and try again."),
    "rate_limited": _("Too many attempts. Wait a minute and try again."),
    "invalid_credentials": _("Wrong login or password."),
    "account_locked": _("Too many wrong passwords. Try again in a quarter of an hour."),
    "account_blocked": _("This account is blocked. Ask your administrator."),
    "no_active_role": _("You have no active role in this network."),
    "tenant_choice_required": _("You work for several networks: ask for a separate login."),
    "invalid_phone": _("This does not look like a phone number."),
    "otp_invalid": _("Wrong or expired code. Ask for a new one."),
    "otp_cooldown": _("A code was sent a moment ago. Wait before asking again."),
    "consent_required": _("Please accept the privacy policy and the processing of personal data."),
    "sms_unavailable": _("We could not send the SMS right now. Try again in a minute."),
    "sms_rejected": _("The SMS provider refused this number."),
    "invalid_init_data": _("Telegram did not confirm who you are. Reopen the app from the bot."),
    "telegram_not_configured": _("Sign-in through Telegram is not set up for this network."),
    "guest_blocked": _("This card is blocked. Ask the restaurant."),
    "card_blocked": _("This card is blocked."),
    "card_not_found": _("No card with this code. Check the code and try again."),
    "guest_not_found": _("No such guest."),
    "invalid_qr": _("This QR code is not a card of this network."),
    "insufficient_points": _("Not enough points on the card."),
    "redemption_limit_exceeded": _("That is more points than this check may take."),
    "check_already_posted": _("This check has been posted already."),
    "check_not_found": _("No check with this number on the card."),
    "refund_exceeds_check": _("The refund is larger than what is left of the check."),
    "points_not_used": _("No points were spent on this check."),
    "operation_in_flight": _("This operation is being posted. Wait a second."),
    "idempotency_key_reused": _("This form was already sent with other figures. Reload the page."),
    "restaurant_forbidden": _("You do not work in this restaurant."),
    "restaurant_not_found": _("No such restaurant."),
    "restaurant_required": _("Choose the restaurant first."),
    "program_not_found": _("This restaurant has no loyalty programme yet."),
    "not_pending": _("This operation has been decided already."),
    "transaction_not_found": _("No such operation."),
    "reward_not_found": _("No such reward."),
    "reward_unavailable": _("This reward is not offered now."),
    "reward_out_of_stock": _("This reward has run out."),
    "guest_transfers_disabled": _("Transfers are not allowed in this programme."),
    "same_card": _("Points cannot be sent to the same card."),
    "tenant_not_found": _("No such network."),
    "role_forbidden": _("Your role may not do this."),
    "not_authenticated": _("Please sign in."),
    "session_revoked": _("Your session has ended. Please sign in again."),
    "database_busy": _("The system is busy. Try again in a moment."),
}
GENERAL = _("Something went wrong. Try again; if it repeats, tell us the code.")


def plain_words(request: Request, code: str) -> str:
    translations = i18n.translations(i18n.language_of(request))
    return translations.gettext(WORDS.get(code, GENERAL))


# How a ledger row's type reads in a history.
TX_TYPES = {
    "ACCRUAL": _("Points for a purchase"),
    "REDEMPTION": _("Paid with points"),
    "MANUAL": _("Manual operation"),
    "PROMO": _("Promotion"),
    "BIRTHDAY": _("Birthday gift"),
    "REFERRAL": _("For a friend"),
    "EXPIRATION": _("Points expired"),
    "TRANSFER": _("Transfer"),
    "ADJUSTMENT": _("Adjustment"),
    "REVERSAL": _("Refund"),
}
