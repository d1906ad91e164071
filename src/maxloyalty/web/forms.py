"""Reading the pages' form posts into the services' own request models."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request

from maxloyalty.web.pages import FormInvalid, fields_of
from maxloyalty.web.security import read_form

Model = TypeVar("Model", bound=BaseModel)
# A form's idempotency key, bounded as the API's Idempotency-Key header is.
FormKey = Annotated[str, Field(max_length=200)]
_SPACES = re.compile(r"[\s\u00a0\u202f]")
_WHOLE = re.compile(r"^[-−]?\d{1,9}$")
_RUBLES = re.compile(r"^\d{1,9}([.,]\d{1,2})?$")


# Taken as typed: a password may start or end with a space.
_VERBATIM = frozenset({"password"})


async def form_of(request: Request) -> dict[str, str]:
    """The form's filled fields, trimmed. A NUL (which PostgreSQL text cannot hold) is no
    form a person typed."""
    fields = {
        name: value if name in _VERBATIM else value.strip()
        for name, value in (await read_form(request)).items()
        if isinstance(value, str)
    }
    if any("\x00" in value for value in fields.values()):
        raise FormInvalid({name: "not text" for name, v in fields.items() if "\x00" in v})
    return {name: value for name, value in fields.items() if value}


def kopecks(text: str | None, field: str) -> int | None:
    """Rubles as people type them ("1 250,50", "1250.5") as kopecks."""
    if not text:
        return None
    compact = _SPACES.sub("", text)
    if not _RUBLES.match(compact):
        raise FormInvalid({field: "not an amount in rubles"})
    value = Decimal(compact.replace(",", "."))
    if value <= 0 or value > 10**8:
        raise FormInvalid({field: "not an amount in rubles"})
    return int(value * 100)


def whole(text: str | None, field: str) -> int | None:
    if not text:
        return None
    compact = _SPACES.sub("", text)
    if not _WHOLE.match(compact):
        raise FormInvalid({field: "not a whole number"})
    return int(compact.replace("−", "-"))


def build(model: type[Model], data: dict[str, Any]) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise FormInvalid(fields_of(error)) from None
