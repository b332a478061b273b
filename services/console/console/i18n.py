"""English and Spanish (Flask-Babel). The catalogues are kept as .po files (translations/<lang>/LC_MESSAGES/
messages.po) and compiled to .mo when the app starts, into a temporary folder named by the catalogues' content
(every process of one version shares it, so starting apps does not leave a folder each): no manual step, no
compiled file in the repository, and a read-only install (the image) still works.

The language is the person's choice, kept in their session (later their profile); before they choose,
the browser's Accept-Language decides, and English when it names neither.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g, request, session
from flask_babel import get_translations
from markupsafe import Markup

LANGUAGES = {"en": "English", "es": "Español"}
DEFAULT_LANGUAGE = "en"
SOURCE = Path(__file__).parent / "translations"


def compile_catalogues(source: Path = SOURCE) -> Path:
    """Every messages.po under ``source`` compiled into a temporary folder of the same shape, named by the
    catalogues' content; return it. Made once per content: compiled aside, then renamed into place (a
    process that loses that race uses the winner's folder)."""
    catalogues = sorted(source.glob("*/LC_MESSAGES/messages.po"))
    digest = hashlib.sha256()
    for po_path in catalogues:
        digest.update(str(po_path.relative_to(source)).encode() + b"\0" + po_path.read_bytes())
    target = Path(tempfile.gettempdir()) / f"console-translations-{digest.hexdigest()[:16]}"
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix="console-translations-staging-"))
    for po_path in catalogues:
        relative = po_path.relative_to(source).with_suffix(".mo")
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as po:
            catalog = read_po(po, locale=po_path.parent.parent.name)
        with (staging / relative).open("wb") as mo:
            write_mo(mo, catalog)
    try:
        os.rename(staging, target)
    except OSError:  # another process put the same catalogues in place first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def select_language() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES)) or DEFAULT_LANGUAGE


def catalogue():
    """The request's catalogue, found once per request. A page asks for about fifty strings (its templates and
    its views' words), and Flask-Babel's own callables look up the locale, its name and the catalogue again for
    each (about a twentieth of the console's time per page, profiled). Same answers: the locale is chosen once
    per request either way (the console never calls ``flask_babel.refresh``)."""
    found = g.get("_template_translations")
    if found is None:
        found = g._template_translations = get_translations()
    return found


def gettext(string: str, **variables) -> str:
    """``flask_babel.gettext`` on the request's catalogue (``catalogue``): what the views' words use."""
    text = catalogue().ugettext(string)
    return text % variables if variables else text


def N_(string: str) -> str:
    """Marks ``string`` for the catalogue without translating it (pybabel extracts ``N_`` by default): the
    entries of a table of ``words``, translated when one is shown."""
    return string


def words(table: dict[str, str], key: str | None) -> str:
    """The translation of ``table[key]`` (entries marked ``N_``), or the key itself when the table has none.
    One lookup for the word shown, not one for every entry of the table (a members list names a status on
    each of its 25 rows)."""
    found = table.get(key or "")
    return gettext(found) if found is not None else (key or "")


def ngettext(singular: str, plural: str, num: int, **variables) -> str:
    """``flask_babel.ngettext`` on the request's catalogue (``num`` is in the variables, as there)."""
    variables.setdefault("num", num)
    return catalogue().ungettext(singular, plural, num) % variables


def template_gettext(string: str, **variables) -> Markup:
    """The templates' ``_()``: what Jinja's newstyle gettext answers in an autoescaped template (every console
    template is one), the translation trusted and the variables escaped, always formatted (``%%`` is ``%``),
    without its two context-passing wrappers around the call (half of a ``_()``'s time, and a page has about
    fifty)."""
    return Markup(catalogue().ugettext(string)) % variables


def install_template_gettext(app: Flask) -> None:
    """The templates' ``_()`` and ``ngettext()`` on the request's catalogue (``catalogue``)."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: catalogue().ugettext(s),
        ngettext=lambda s, p, n: catalogue().ungettext(s, p, n),
        pgettext=lambda c, s: catalogue().upgettext(c, s),
        npgettext=lambda c, s, p, n: catalogue().unpgettext(c, s, p, n),
        newstyle=True)
    app.jinja_env.globals["_"] = template_gettext
