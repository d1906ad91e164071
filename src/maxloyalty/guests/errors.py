"""Refusals about guests, their cards, profiles and sign-in."""

from __future__ import annotations

from maxloyalty.kit.errors import (
    AppError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Rejection,
    TooManyRequests,
    Unavailable,
)


class BirthDateLocked(Conflict):
    code = "birth_date_locked"
    message = "The birthday is already set."


class CardBlocked(Conflict):
    code = "card_blocked"


class CardDeleted(Conflict):
    code = "card_deleted"
    message = "A deleted card stays deleted."


class CardNotFound(NotFound):
    code = "card_not_found"
    message = "No such card."


class ChildNotFound(NotFound):
    code = "child_not_found"
    message = "No such child."


class CodeSpaceExhausted(Unavailable):
    code = "code_space_exhausted"
    message = "Could not draw a free card code; try again."


class ConsentRequired(Invalid):
    code = "consent_required"
    message = "Accept the privacy policy and the processing of personal data to continue."


class GuestBlocked(Forbidden):
    code = "guest_blocked"
    message = "Your card in this network is blocked."


class OtpCooldown(TooManyRequests):
    code = "otp_cooldown"


class OtpInvalid(Rejection, AppError):
    code = "otp_invalid"
    message = "The code is wrong or has expired."


class ProfileNotFound(NotFound):
    code = "profile_not_found"
    message = "You have no profile in this network yet."


class RotatingCodeRequired(Invalid):
    code = "rotating_code_required"
    message = (
        "This programme accepts only the guest app's current code or QR (or the phone),"
        " not the card's permanent code or QR."
    )


class RestaurantRequired(Invalid):
    code = "restaurant_required"
    message = "Cards here are per restaurant: name the restaurant."


class TelegramNotConfigured(Unavailable):
    code = "telegram_not_configured"
    message = "Telegram sign-in is not configured."


class GuestNotFound(NotFound):
    code = "guest_not_found"
    message = "No such guest."
