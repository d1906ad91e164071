"""Money, points and moments as people read them: rubles with the language's number
format, times in the restaurant's (or network's) zone."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal


def rubles(kopecks: int, language: str) -> str:
    amount = Decimal(kopecks) / 100
    digits = "#,##0" if kopecks % 100 == 0 else "#,##0.00"
    return format_currency(
        amount, "RUB", format=f"{digits}\xa0¤", locale=language, currency_digits=False
    )


def points(value: int, language: str) -> str:
    return format_decimal(value, locale=language)


def moment(value: datetime, zone: str, language: str) -> str:
    return format_datetime(value.astimezone(ZoneInfo(zone)), "d MMM, HH:mm", locale=language)


def day(value: datetime, zone: str, language: str) -> str:
    return format_date(value.astimezone(ZoneInfo(zone)), "d MMMM", locale=language)


def rubles_to_type(kopecks: int | None) -> str:
    """An amount as a form field holds it: "2450" or "2450.50" (what the forms read back)."""
    if not kopecks:
        return ""
    rubles, rest = divmod(kopecks, 100)
    return f"{rubles}.{rest:02d}" if rest else str(rubles)
