"""Refusals of personal-data requests."""

from __future__ import annotations

from maxloyalty.kit.errors import NotFound


class UserNotFound(NotFound):
    code = "user_not_found"
    message = "No such person."
