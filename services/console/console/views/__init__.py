"""The console's pages, one blueprint per area: sign-in, home, language."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, redirect, url_for

from console import sessions
from console.api_client import Api


def settings():
    return current_app.extensions["console.settings"]


def api(person: sessions.SignedInPerson | None = None) -> Api:
    """A client of the four services with the signed-in person's token (none before sign-in)."""
    return Api(settings(), person.token if person else None)


def sign_in_first():
    return redirect(url_for("signin.start"))


def same_origin_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site (never another host: no open redirect), else ``default``."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
