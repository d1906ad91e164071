"""Refusals when a one-time code cannot be delivered by SMS."""

from __future__ import annotations

from maxloyalty.kit.errors import Invalid, Unavailable


class SmsUnavailable(Unavailable):
    code = "sms_unavailable"
    message = "The SMS could not be sent; try again later."


class SmsRejected(Invalid):
    code = "sms_rejected"
    message = "The SMS provider refused this number."
