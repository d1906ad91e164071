"""How a page route answers a refusal: the problem's code in plain words, in the page's
language, as an inline message (htmx) or a whole page, with the problem's status. Field
errors of a form come back beside their fields."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from maxloyalty.kit.errors import AppError
from maxloyalty.web.messages import plain_words
from maxloyalty.web.templating import render

log = structlog.get_logger(__name__)


class FormInvalid(AppError):
    """A form field out of bounds (the pages' counterpart of the API's validation_error)."""

    status = 422
    code = "form_invalid"
    message = "Check the highlighted fields."

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__()
        self.fields = fields


def fields_of(error: ValidationError) -> dict[str, str]:
    return {str(e["loc"][0]) if e["loc"] else "": e["msg"] for e in error.errors()}


def refusal(request: Request, error: AppError) -> Response:
    fields = error.fields if isinstance(error, FormInvalid) else {}
    template = "_refusal.html" if request.headers.get("hx-request") else "refusal_page.html"
    return render(
        request,
        template,
        status_code=error.status,
        headers={"HX-Reswap": "innerHTML", "HX-Retarget": "#notice"}
        if request.headers.get("hx-request")
        else None,
        code=error.code,
        message=plain_words(request, error.code),
        fields=fields,
    )


class PageRoute(APIRoute):
    """A route whose refusals are rendered for people instead of as problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except AppError as error:
                log.info("page.refused", code=error.code, path=request.url.path)
                return refusal(request, error)

        return answer
