"""Russian (the default) and English from Babel message catalogues.

The `.po` files are the source; they are compiled in memory at start-up, so no binary
`.mo` lives in the repository. The language is the `lang` cookie (set by the switch), else
the best of `Accept-Language`, else Russian."""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from starlette.requests import Request

LANGUAGES = ("ru", "en")
DEFAULT = "ru"
LANG_COOKIE = "lang"
_CATALOGUES = Path(__file__).parent / "translations"


@cache
def translations(language: str) -> gettext.NullTranslations:
    path = _CATALOGUES / language / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _from_header(header: str) -> str | None:
    weighted: list[tuple[float, str]] = []
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        weighted.append((quality, tag.strip().lower()[:2]))
    for _, language in sorted(weighted, key=lambda item: -item[0]):
        if language in LANGUAGES:
            return language
    return None


def language_of(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return _from_header(request.headers.get("accept-language", "")) or DEFAULT


def locale(language: str) -> Locale:
    return Locale.parse(language)
