"""Keyset (cursor) pagination over time-ordered UUID keys: stable under inserts."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from maxloyalty.kit.errors import InvalidCursor

T = TypeVar("T")
# Any select (of one or several columns/entities).
Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    limit: int
    cursor: uuid.UUID | None


def _decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor() from exc


def encode_cursor(key: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(key.bytes).rstrip(b"=").decode()


def page_params(
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=_decode_cursor(cursor) if cursor else None)


Paging = Annotated[PageParams, Depends(page_params)]


def paginate(query: Q, key: InstrumentedAttribute[uuid.UUID], params: PageParams) -> Q:
    if params.cursor is not None:
        query = query.where(key > params.cursor)
    return query.order_by(key).limit(params.limit + 1)


def paginate_newest(query: Q, key: InstrumentedAttribute[uuid.UUID], params: PageParams) -> Q:
    """Newest first, for logs: ids are time-ordered (UUIDv7), so the key orders by time."""
    if params.cursor is not None:
        query = query.where(key < params.cursor)
    return query.order_by(key.desc()).limit(params.limit + 1)


def make_page(rows: list[Any], params: PageParams, key: str = "id") -> tuple[list[Any], str | None]:
    """Split the `limit + 1` rows `paginate` fetched into a page and the next cursor."""
    if len(rows) <= params.limit:
        return rows, None
    rows = rows[: params.limit]
    return rows, encode_cursor(getattr(rows[-1], key))
