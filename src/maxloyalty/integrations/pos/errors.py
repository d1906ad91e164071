"""Refusals of POS integrations and the tills' API."""

from __future__ import annotations

from maxloyalty.kit.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized


class CardRequired(Invalid):
    code = "card_required"
    message = "Name the card: this order holds no points."


class OrderAlreadyPosted(Conflict):
    code = "order_already_posted"
    message = "This order's check is already posted; order ids must not repeat."


class PosIntegrationInactive(Forbidden):
    code = "pos_integration_inactive"
    message = "This POS integration is switched off."


class PosIntegrationNotFound(NotFound):
    code = "pos_integration_not_found"
    message = "No such POS integration."


class PosIntegrationRequired(Forbidden):
    code = "pos_integration_required"
    message = "This API key belongs to no POS integration."


class PosSystemMismatch(Forbidden):
    code = "pos_system_mismatch"


class NotAnIikoIntegration(PosSystemMismatch):
    status = 422
    message = "This is not an iiko integration."


class InvalidWebhookToken(Unauthorized):
    code = "invalid_webhook_token"
    message = "The webhook token is missing."
