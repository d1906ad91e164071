"""RFC 9457 problem details: every error leaves the API as `application/problem+json`
with a stable machine `code`."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from maxloyalty.kit.context import request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger(__name__)


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class Problem(BaseModel):
    """The body of every error answer (documented in the OpenAPI schema)."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class AppError(Exception):
    """A refusal with a stable code; one handler maps it to HTTP.

    Each refusal is a class of its package's `errors.py` that names its `code`, `status`
    and `message` (`class CardNotFound(NotFound): code = "card_not_found"`…); services raise
    it, with a `detail` only where the answer says more than the message. Every class is
    in `catalogue` under its code, which is one class's alone."""

    status: int = 400
    code: str = "bad_request"
    message: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            taken = catalogue.setdefault(cls.code, cls)
            if taken is not cls:
                raise TypeError(f"{cls.__qualname__}: code {cls.code!r} is {taken.__qualname__}'s")

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        detail = detail or self.message
        super().__init__(detail or self.code)
        self.detail = detail
        self.code = code or self.code
        self.status = status or self.status
        self.errors = errors
        self.headers = headers or {}


# Every named refusal by its code (filled as the classes are defined).
catalogue: dict[str, type[AppError]] = {}


class DatabaseUnreachable(Exception):
    """The database server could not be reached at all (refused, unknown host, timed out).

    asyncpg raises these as bare OSErrors, which SQLAlchemy passes through unwrapped;
    `kit.db` turns them into this while connecting, so no other OSError (an outbound call
    failing) reads as the database being out of reach."""


class Rejection(AppError):
    """A refusal whose bookkeeping (audit entry, attempt counter, revoked sessions) must be
    committed although the request fails; see `kit.db.unit_of_work`."""


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"

    def __init__(self, detail: str | None = None, *, code: str | None = None) -> None:
        # A subclass answering 403 (a wrong current password) asks for no new credentials.
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        super().__init__(detail, code=code, headers=headers)


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class TooManyRequests(AppError):
    status = 429
    code = "rate_limited"


class Invalid(AppError):
    """Well-formed, but not acceptable as it stands."""

    status = 422


class Unavailable(AppError):
    """Cannot be served now; the same request may succeed later."""

    status = 503


class InvalidCursor(AppError):
    code = "invalid_cursor"
    message = "The cursor is not valid."


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class InvalidQr(Invalid):
    code = "invalid_qr"
    message = "The QR code is not a valid card."


class QrExpired(Invalid):
    code = "qr_expired"
    message = "The QR code has expired: the guest's app shows a fresh one."


class DatabaseBusy(Unavailable):
    """Nothing was written; the same request may be sent again (`Retry-After`)."""

    code = "database_busy"


class ConstraintViolation(Conflict):
    """The database refused what no service check caught (a reference to a missing row)."""

    code = "constraint_violation"


class InvalidValue(Invalid):
    code = "invalid_value"
    message = "A value is out of range or not valid text."


class InternalError(AppError):
    status = 500
    code = "internal_error"
    message = "An unexpected error occurred."


class DatabaseUnavailable(Unavailable):
    """Readiness: the database does not answer."""

    code = "database_unavailable"


class MigrationsPending(Unavailable):
    """Readiness: the database is not at the revision this code expects."""

    code = "migrations_pending"


class ValidationFailed(AppError):
    """A field is missing, of the wrong type or out of bounds (the body's `errors` say which)."""

    status = 422
    code = "validation_error"
    message = "The request has invalid fields."


class RequiredField(ValidationFailed):
    """A PATCH sent null for a field that must have a value (see the README's PATCH rule)."""


def refuse_nulls(changes: Mapping[str, Any], required: frozenset[str]) -> None:
    """The PATCH rule: `null` is refused for the fields in `required`."""
    for field, value in changes.items():
        if value is None and field in required:
            raise RequiredField(f"{field} cannot be null.")


class MalformedJson(AppError):
    code = "malformed_json"
    message = "The body is not valid JSON."


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        title=HTTPStatus(status).phrase,
        status=status,
        code=code,
        detail=detail,
        instance=request.url.path,
        request_id=request_id.get(),
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


_CONCURRENT = "The request met a concurrent one; nothing was written, send it again."
_UNAVAILABLE = "The database cannot take the request now; nothing was written, send it again."

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    return [
        FieldError(
            field=".".join(str(part) for part in err.get("loc", ())),
            message=str(err.get("msg", "")),
            type=str(err.get("type", "")),
        )
        for err in exc.errors()
    ]


async def _on_app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(request, exc.status, exc.code, exc.detail, exc.errors, exc.headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    malformed = any(err.type == "json_invalid" for err in errors)
    refusal = MalformedJson() if malformed else ValidationFailed(errors=errors)
    return await _on_app_error(request, refusal)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_response(request, exc.status_code, code, detail, headers=exc.headers)


async def _on_statement_error(request: Request, exc: Exception) -> JSONResponse:
    """What the database refused of a request that no service check caught — a constraint
    (say, a reference to a row that does not exist), a value out of a column's range, text
    that is not valid Unicode — or could not take at all (a deadlock, no connection). The
    transaction is void; the answer is a 4xx or a 503, not a 500."""
    assert isinstance(exc, StatementError)
    if isinstance(exc, IntegrityError):
        constraint = getattr(getattr(exc.orig, "__cause__", None), "constraint_name", None)
        log.warning("integrity_error", path=request.url.path, constraint=constraint)
        detail = f"The request conflicts with stored data ({constraint})." if constraint else None
        return await _on_app_error(request, ConstraintViolation(detail))
    state = _sqlstate(exc)
    if isinstance(exc, DataError) or isinstance(exc.orig, UnicodeError) or state[:2] == "22":
        log.warning("invalid_value", path=request.url.path, error=type(exc.orig).__name__)
        return await _on_app_error(request, InvalidValue())
    if state[:2] == "40":  # a deadlock or serialization failure: void, and safe to retry
        return _database_busy(request, _CONCURRENT, "transaction_rolled_back", sqlstate=state)
    if _unavailable(state):
        return _database_busy(request, _UNAVAILABLE, "database_unavailable", sqlstate=state)
    return await _on_unexpected(request, exc)


def _unavailable(state: str) -> bool:
    """The server refused or dropped the connection: out of connections or other resources
    (class 53; a full server and a role at its CONNECTION LIMIT both give 53300), a
    connection failure (08), shutting down or starting up (57P01-57P03). The transaction
    never began or the server rolled it back (a connection lost during COMMIT itself
    leaves that unknown: the same Idempotency-Key makes the retry safe anyway)."""
    return state[:2] in ("53", "08") or state in ("57P01", "57P02", "57P03")


def _database_busy(request: Request, detail: str, event: str, **facts: str) -> JSONResponse:
    """503 `database_busy`: nothing was written, the same request may be sent again. A
    warning, not a trace: this is load or an outage, not a bug."""
    log.warning(event, path=request.url.path, **facts)
    return problem_response(request, 503, DatabaseBusy.code, detail, headers={"Retry-After": "1"})


async def _on_pool_timeout(request: Request, exc: Exception) -> JSONResponse:
    """Every pooled connection stayed busy for `db_pool_timeout` seconds."""
    return _database_busy(request, _UNAVAILABLE, "database_pool_timeout")


async def _on_database_unreachable(request: Request, exc: Exception) -> JSONResponse:
    return _database_busy(request, _UNAVAILABLE, "database_unreachable", error=str(exc))


def _sqlstate(exc: StatementError) -> str:
    """PostgreSQL's SQLSTATE of the refusal ('' if unknown): some data errors (NUL in
    text, say) reach us as a generic DBAPI error, not a DataError."""
    for error in (exc.orig, getattr(exc.orig, "__cause__", None)):
        state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if isinstance(state, str):
            return state
    return ""


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", path=request.url.path)
    return await _on_app_error(request, InternalError())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _on_app_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(StatementError, _on_statement_error)
    app.add_exception_handler(PoolTimeout, _on_pool_timeout)
    app.add_exception_handler(DatabaseUnreachable, _on_database_unreachable)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*answers: int | type[AppError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problem answers a route may give: error classes
    (their codes are listed under their status), or bare statuses."""
    codes: dict[int, list[str]] = {}
    for answer in answers:
        if isinstance(answer, int):
            codes.setdefault(answer, [])
        else:
            codes.setdefault(answer.status, []).append(answer.code)
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase
            + (": " + ", ".join(f"`{c}`" for c in sorted(set(found))) if found else ""),
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status, found in sorted(codes.items())
    }
