"""Refusals of ledger operations: checks, holds, idempotency, approvals, transfers."""

from __future__ import annotations

from maxloyalty.kit.errors import AppError, Conflict, Forbidden, Invalid, NotFound


class CheckAlreadyPosted(Conflict):
    code = "check_already_posted"
    message = "This check was already posted with different contents."


class CheckNotFound(NotFound):
    code = "check_not_found"
    message = "This till posted no such check."


class GuestTransfersDisabled(Forbidden):
    code = "guest_transfers_disabled"
    message = "This programme does not allow transfers between guests."


class HoldCommitted(Conflict):
    code = "hold_committed"
    message = "The order was already committed."


class HoldNotFound(NotFound):
    code = "hold_not_found"
    message = "This order holds no points."


class IdempotencyKeyRequired(AppError):
    code = "idempotency_key_required"
    message = "Send an Idempotency-Key header with every operation."


class IdempotencyKeyReused(Invalid):
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was used for a different request."


class InsufficientPoints(Conflict):
    code = "insufficient_points"


class NotPending(Conflict):
    code = "not_pending"


class OperationInFlight(Conflict):
    code = "operation_in_flight"
    message = "A concurrent request is in flight; retry."


class PointsNotUsed(Invalid):
    code = "points_not_used"
    message = "This network gives discounts, not points."


class RedemptionLimitExceeded(Invalid):
    code = "redemption_limit_exceeded"


class RefundExceedsCheck(Invalid):
    code = "refund_exceeds_check"


class SameCard(Invalid):
    code = "same_card"
    message = "A card cannot transfer to itself."


class TransactionNotFound(NotFound):
    code = "transaction_not_found"
    message = "No such manual operation."
