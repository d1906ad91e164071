"""One Jinja2 environment for every page: autoescaping, the i18n extension bound to the
request's language per render, and the formatting filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from maxloyalty.web import formatting, i18n
from maxloyalty.web.messages import TX_TYPES
from maxloyalty.web.security import csrf_token, remember_cookie

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(
    request: Request,
    name: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    language = i18n.language_of(request)
    zone = context.pop("zone", "Europe/Moscow")
    template = _templates.get_template(name)
    translations = i18n.translations(language)

    def translate(message: str, **values: object) -> str:
        text = translations.gettext(message)
        return text % values if values else text

    html = template.render(
        request=request,
        lang=language,
        languages=i18n.LANGUAGES,
        csrf=csrf_token(request),
        rub=lambda kopecks: formatting.rubles(kopecks, language),
        rub_input=formatting.rubles_to_type,
        pts=lambda value: formatting.points(value, language),
        at=lambda moment: formatting.moment(moment, zone, language),
        day=lambda moment: formatting.day(moment, zone, language),
        gettext=translate,
        ngettext=translations.ngettext,
        _=translate,
        tx_type=lambda kind: translations.gettext(TX_TYPES.get(str(kind), str(kind))),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    remember_choices(request, response)
    return response


def remember_choices(request: Request, response: Response) -> None:
    """The language switch and the page's session cookies travel with every answer."""
    chosen = request.query_params.get("lang")
    if chosen in i18n.LANGUAGES:
        remember_cookie(request, i18n.LANG_COOKIE, chosen, path="/", max_age=365 * 86400)
    for name, value, options in getattr(request.state, "cookies", ()):
        if value is None:
            response.delete_cookie(name, **options)
        else:
            response.set_cookie(name, value, **options)
    request.state.cookies = []
