"""The catalogues are compiled once per content: apps started again reuse the folder instead of leaving one each."""
from __future__ import annotations

import shutil

from babel.messages.mofile import read_mo

from console.i18n import SOURCE, compile_catalogues


def test_compiling_twice_gives_the_same_folder_with_every_language(tmp_path):
    source = tmp_path / "translations"
    shutil.copytree(SOURCE, source)

    first, second = compile_catalogues(source), compile_catalogues(source)

    assert first == second
    with (first / "es" / "LC_MESSAGES" / "messages.mo").open("rb") as mo:
        assert len(read_mo(mo)) > 10
    shutil.rmtree(first)


def test_a_changed_catalogue_is_compiled_into_a_new_folder(tmp_path):
    source = tmp_path / "translations"
    shutil.copytree(SOURCE, source)
    before = compile_catalogues(source)
    po = source / "es" / "LC_MESSAGES" / "messages.po"
    po.write_text(po.read_text(encoding="utf-8") + '\nmsgid "A sentence added for this test"\nmsgstr "Una frase"\n',
                  encoding="utf-8")

    after = compile_catalogues(source)

    assert after != before
    with (after / "es" / "LC_MESSAGES" / "messages.mo").open("rb") as mo:
        assert read_mo(mo).get("A sentence added for this test").string == "Una frase"
    shutil.rmtree(before)
    shutil.rmtree(after)


def test_templates_translate_as_jinjas_own_newstyle_gettext_does():
    from flask import Flask
    from flask_babel import Babel
    from jinja2 import Environment

    from console.i18n import catalogue, install_template_gettext

    app = Flask(__name__)
    Babel(app, locale_selector=lambda: "es", default_translation_directories=str(compile_catalogues()))
    install_template_gettext(app)
    jinjas = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    jinjas.install_gettext_callables(gettext=lambda s: catalogue().ugettext(s),
                                     ngettext=lambda s, p, n: catalogue().ungettext(s, p, n), newstyle=True)
    source = ('{{ _("Sign out") }}|{{ _("%(name)s is now a member.", name=who) }}|{{ _("Nothing at 100%%") }}'
              '|{{ ngettext("%(num)d member", "%(num)d members", 3) }}')

    with app.test_request_context():
        ours = app.jinja_env.from_string(source).render(who="<b>Ana</b>")
        theirs = jinjas.from_string(source).render(who="<b>Ana</b>")

    assert ours == theirs
    assert "&lt;b&gt;Ana&lt;/b&gt;" in ours and "100%|" in ours and "Sign out" not in ours   # in Spanish, escaped


def test_a_table_of_words_translates_the_word_shown_and_names_what_it_does_not_know():
    from flask import Flask
    from flask_babel import Babel

    from console.views.members_words import delivery_words, status_words

    app = Flask(__name__)
    Babel(app, locale_selector=lambda: "es", default_translation_directories=str(compile_catalogues()))
    with app.test_request_context():
        assert status_words("pending_consent") not in ("pending_consent", "waiting for consent")   # in Spanish
        assert delivery_words("held") != "held until quiet hours end"
        assert status_words("someday") == "someday" and status_words(None) == ""
