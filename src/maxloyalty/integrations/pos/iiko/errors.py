"""Refusals of the iiko integration: iikoCloud calls and iikoTransport events, and the
iikoCloud client's own failure (`IikoError`, which the sync records, never answers as is)."""

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


class PosUrlRefused(Invalid):
    code = "pos_url_refused"


class IikoError(Exception):
    """A call to iikoCloud failed; `retryable` says whether a later try may succeed.

    `code` is one of "auth_failed", "timeout", "network", "bad_response", "rejected".
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(f"iiko error {code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.retryable = retryable
        self.correlation_id = correlation_id  # quote it to iiko support
