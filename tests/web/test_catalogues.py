"""The pages speak Russian everywhere: every message the pages show has its Russian words,
with the same placeholders as the English."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "src" / "maxloyalty" / "web"
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _extracted() -> set[str]:
    methods = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    return {
        message
        for _, _, message, _, _ in extract_from_dir(
            WEB, method_map=methods, options_map=options, keywords={"_": None}
        )
        if isinstance(message, str) and message
    }


def _catalogue(language: str) -> dict[str, str]:
    with (WEB / "translations" / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return {m.id: m.string for m in read_po(po) if isinstance(m.id, str) and m.id}


def test_every_message_on_the_pages_has_its_russian() -> None:
    shown = _extracted()
    russian = _catalogue("ru")
    assert len(shown) > 100
    assert sorted(shown - russian.keys()) == [], "run `make messages` and translate"
    assert sorted(m for m in shown if not russian[m]) == []
    assert sorted(russian.keys() - shown) == [], "messages no page shows: `make messages`"
    assert _catalogue("en").keys() == russian.keys()


def test_translations_keep_the_placeholders() -> None:
    for message, words in _catalogue("ru").items():
        assert set(_PLACEHOLDER.findall(words)) == set(_PLACEHOLDER.findall(message)), message
