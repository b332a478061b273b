"""The language switch: the person's choice, kept in their session (later also in their profile)."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, request, session

from console.i18n import LANGUAGES
from console.views import same_origin_path

blp = Blueprint("language", __name__)


@blp.post("/language")
def choose():
    chosen = request.form.get("lang", "")
    if chosen not in LANGUAGES:
        abort(400)
    session["lang"] = chosen
    return redirect(same_origin_path(request.form.get("next")), 303)
