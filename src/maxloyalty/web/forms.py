"""Reading the pages' form posts into the services' own request models."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from maxloyalty.web.pages import FormInvalid, fields_of

Model = TypeVar("Model", bound=BaseModel)
_SPACES = re.compile(r"[\s\u00a0\u202f]")


async def form_of(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str) and v.strip()}


def kopecks(text: str | None, field: str) -> int | None:
    """Rubles as people type them ("1 250,50", "1250.5") as kopecks."""
    if not text:
        return None
    try:
        value = Decimal(_SPACES.sub("", text).replace(",", "."))
    except InvalidOperation:
        raise FormInvalid({field: "not an amount in rubles"}) from None
    if value <= 0 or value != value.quantize(Decimal("0.01")) or value > 10**8:
        raise FormInvalid({field: "not an amount in rubles"})
    return int(value * 100)


def whole(text: str | None, field: str) -> int | None:
    if not text:
        return None
    try:
        return int(_SPACES.sub("", text))
    except ValueError:
        raise FormInvalid({field: "not a whole number"}) from None


def build(model: type[Model], data: dict[str, Any]) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise FormInvalid(fields_of(error)) from None
