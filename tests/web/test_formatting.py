"""Rubles, points and dates as people read them; amounts as cashiers type them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from maxloyalty.web import formatting, i18n
from maxloyalty.web.forms import kopecks
from maxloyalty.web.pages import FormInvalid


def test_rubles_in_russian_and_english() -> None:
    assert formatting.rubles(123456789, "ru") == "1\xa0234\xa0567,89\xa0₽"
    assert formatting.rubles(250000, "ru") == "2\xa0500\xa0₽"
    assert formatting.rubles(150050, "en") == "1,500.50\xa0RUB"
    assert formatting.points(12500, "ru") == "12\xa0500"


def test_a_day_is_the_restaurants_day() -> None:
    # 22:30 in Moscow on 13 March is already 14 March in Novosibirsk.
    moment = datetime(2027, 3, 13, 19, 30, tzinfo=UTC)
    assert formatting.day(moment, "Europe/Moscow", "ru") == "13 марта"
    assert formatting.day(moment, "Asia/Novosibirsk", "ru") == "14 марта"
    assert formatting.day(moment, "Asia/Novosibirsk", "en") == "14 March"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("1250", 125000), ("1 250,50", 125050), ("1250.5", 125050), ("0,01", 1), ("2\xa0450", 245000)],
)
def test_amounts_as_cashiers_type_them(typed: str, expected: int) -> None:
    assert kopecks(typed, "amount") == expected


@pytest.mark.parametrize("typed", ["abc", "-5", "0", "1,005", "1e3", "12.3.4", "100000001", "nan"])
def test_what_is_no_amount_is_refused_with_the_field_named(typed: str) -> None:
    with pytest.raises(FormInvalid) as refused:
        kopecks(typed, "amount")
    assert list(refused.value.fields) == ["amount"]


@given(st.integers(min_value=1, max_value=10**10))
def test_an_amount_drawn_into_a_form_reads_back_the_same(value: int) -> None:
    assert kopecks(formatting.rubles_to_type(value), "amount") == value


def _request(headers: dict[str, str], query: str = "") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "headers": raw, "query_string": query.encode()})


@pytest.mark.parametrize(
    ("headers", "query", "language"),
    [
        ({}, "", "ru"),
        ({"Accept-Language": "en-US,en;q=0.9"}, "", "en"),
        ({"Accept-Language": "de-DE, en;q=0.5, ru;q=0.8"}, "", "ru"),
        ({"Accept-Language": "fr"}, "", "ru"),
        ({"Accept-Language": "ru", "Cookie": "lang=en"}, "", "en"),
        ({"Cookie": "lang=en"}, "lang=ru", "ru"),
        ({"Cookie": "lang=xx"}, "lang=zz", "ru"),
    ],
)
def test_the_language_is_the_switch_then_the_browser_then_russian(
    headers: dict[str, str], query: str, language: str
) -> None:
    assert i18n.language_of(_request(headers, query)) == language
