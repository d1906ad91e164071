"""Refusals of the iiko integration: iikoCloud calls and iikoTransport events."""

from __future__ import annotations

from maxloyalty.kit.errors import AppError, Invalid, NotFound, Rejection, Unavailable


class CredentialsRequired(Invalid):
    code = "credentials_required"
    message = "Set the integration's iikoCloud apiLogin first."


class OrganizationRequired(Invalid):
    code = "organization_required"
    message = "Set the integration's external_id to the iiko organization id first."


class PosUnavailable(Rejection, AppError):
    code = "pos_unavailable"
    status = 502


class RetryLater(Unavailable):
    code = "retry_later"


class EventNotFound(NotFound):
    code = "event_not_found"
    message = "No such event."


class InvalidEvents(AppError):
    code = "invalid_events"
    message = "The body nests too deeply."
