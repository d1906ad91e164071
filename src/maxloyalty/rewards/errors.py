"""The reward catalogue's refusals."""

from __future__ import annotations

from maxloyalty.kit.errors import Conflict, NotFound, ValidationFailed


class RewardNotFound(NotFound):
    code = "reward_not_found"
    message = "No such reward."


class RewardUnavailable(Conflict):
    code = "reward_unavailable"
    message = "This reward is not offered here now."


class RewardOutOfStock(Conflict):
    code = "reward_out_of_stock"
    message = "This reward is out of stock."


class RequiredField(ValidationFailed):
    """A PATCH sent null for a field that must have a value (see the README's PATCH rule)."""


class GuestRequired(ValidationFailed):
    code = "guest_required"
    message = "Name the guest (guest_id)."
