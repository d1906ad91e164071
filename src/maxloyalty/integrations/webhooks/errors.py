"""Refusals about outbound webhook endpoints and deliveries."""

from __future__ import annotations

from maxloyalty.kit.errors import Conflict, Invalid, NotFound


class UnknownEventType(Invalid):
    code = "unknown_event_type"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    message = "No such delivery."


class WebhookEndpointDisabled(Conflict):
    code = "webhook_endpoint_disabled"
    message = "The endpoint is disabled."


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    message = "No such webhook endpoint."


class WebhookUrlRefused(Invalid):
    code = "webhook_url_refused"
