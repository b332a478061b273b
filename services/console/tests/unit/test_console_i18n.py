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
