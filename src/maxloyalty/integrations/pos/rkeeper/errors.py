"""Refusals of the R-Keeper card server: requests it cannot read. (A check it can read but
not apply is no refusal: R-Keeper is answered Result="1".)"""

from __future__ import annotations

from maxloyalty.kit.errors import AppError, NotFound


class InvalidRequest(AppError):
    """Well-formed XML that is not a FarCards request we can serve."""

    status = 400
    code = "invalid_request"


class InvalidXml(AppError):
    status = 400
    code = "invalid_xml"


class UnknownCall(NotFound):
    code = "unknown_call"
