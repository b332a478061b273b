"""English and Spanish (Flask-Babel). The catalogues are kept as .po files (translations/<lang>/LC_MESSAGES/
messages.po) and compiled to .mo when the app starts, into a folder of its own: no manual step, no compiled
file in the repository, and a read-only install (the image) still works.

The language is the person's choice, kept in their session (later their profile); before they choose,
the browser's Accept-Language decides, and English when it names neither.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import request, session

LANGUAGES = {"en": "English", "es": "Español"}
DEFAULT_LANGUAGE = "en"
SOURCE = Path(__file__).parent / "translations"


def compile_catalogues(source: Path = SOURCE) -> Path:
    """Compile every messages.po under ``source`` into a new temporary folder of the same shape; return it."""
    target = Path(tempfile.mkdtemp(prefix="console-translations-"))
    for po_path in source.glob("*/LC_MESSAGES/messages.po"):
        relative = po_path.relative_to(source).with_suffix(".mo")
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as po:
            catalog = read_po(po, locale=po_path.parent.parent.name)
        with (target / relative).open("wb") as mo:
            write_mo(mo, catalog)
    return target


def select_language() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES)) or DEFAULT_LANGUAGE
