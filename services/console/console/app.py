"""create_app(settings): the console's Flask app (gunicorn: "console.app:create_app()").

Server-rendered pages (Jinja2), sessions in the console's own MongoDB (Flask-Session), CSRF on every POST
(Flask-WTF's CSRFProtect), English and Spanish (Flask-Babel), our own CSS served from /static. It holds no
Kafka client and no domain data: every page reads and writes through the four services' HTTP APIs.
"""
from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

from flask import Flask, g, jsonify, redirect, render_template, request, url_for, flash
from flask_babel import Babel
from flask_session import Session
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from shared.logging import configure_logging, request_id
from shared.mongo import connect

from console import sessions
from console.api_client import ServiceUnavailable, SignedOut
from console.config import Settings
from console.i18n import LANGUAGES, compile_catalogues, gettext as _, install_template_gettext, select_language
from console.views import home, language, signin
from console.views import leaders, matching  # area 2: peer leaders and matching

log = logging.getLogger("recoverynet.console")

SESSIONS_COLLECTION = "sessions"

# Pages load only what the console serves: no inline script or style, no other host, no framing.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def create_app(settings: Settings | None = None, *, configure_logs: bool = True) -> Flask:
    settings = settings or Settings.from_env()
    if configure_logs:
        configure_logging("console", settings.log_level)
    app = Flask("console", static_folder="static", template_folder="templates", root_path=_package_root())
    client = connect(settings.mongo_uri, settings.mongo_timeout_ms)
    db = client[settings.mongo_database]
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_TYPE="mongodb",
        SESSION_MONGODB=client,
        SESSION_MONGODB_DB=settings.mongo_database,
        SESSION_MONGODB_COLLECT=SESSIONS_COLLECTION,
        SESSION_PERMANENT=True,
        SESSION_USE_SIGNER=False,   # the id is 32 random bytes; the store, not a signature, says it is real
        SESSION_COOKIE_NAME="console_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_idle_minutes),
        # saved when it changes, not on every request: "seen" changes at most once a minute (sessions.touch),
        # which also keeps the stored expiry and the cookie's fresh while the person is active
        SESSION_REFRESH_EACH_REQUEST=False,
        WTF_CSRF_TIME_LIMIT=settings.session_max_hours * 3600,
        WTF_CSRF_SSL_STRICT=settings.secure_cookies,
        BABEL_DEFAULT_LOCALE="en",
        BABEL_TRANSLATION_DIRECTORIES=str(compile_catalogues()),
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    app.extensions["console.settings"] = settings
    app.extensions["console.db"] = db
    Session(app)
    db[SESSIONS_COLLECTION].create_index("id", unique=True)
    CSRFProtect(app)
    Babel(app, locale_selector=select_language)
    install_template_gettext(app)

    app.register_blueprint(signin.blp)
    app.register_blueprint(home.blp)
    app.register_blueprint(language.blp)
    from console.views import meetings, meeting_day, one_on_one; [app.register_blueprint(m.blp) for m in (meetings, meeting_day, one_on_one)]  # noqa: E702 (area 3)
    app.register_blueprint(leaders.blp); app.register_blueprint(matching.blp)  # area 2
    from console.views import messages, admin; [app.register_blueprint(m.blp) for m in (messages, admin)]  # noqa: E702 (area 4)
    from console.views import my, my_settings; [app.register_blueprint(m.blp) for m in (my, my_settings)]  # noqa: E702 (area 6)
    from console.views import members, member_actions, imports; [app.register_blueprint(m.blp) for m in (members, member_actions, imports)]  # noqa: E702 (area 1)
    from console.views import leader_portal; app.register_blueprint(leader_portal.blp)  # noqa: E702 (area 5)
    from console.views import reports; app.register_blueprint(reports.blp)  # noqa: E702 (issue 18: Reports)
    _install_session_rules(app, settings)
    _install_request_context(app)
    _install_errors(app)
    _install_operational_routes(app, db)

    @app.context_processor
    def layout_context():
        from flask_babel import get_locale
        return {"person": sessions.current_person(), "languages": LANGUAGES, "current_language": str(get_locale()),
                "role_name": role_name}

    return app


def role_name(role: str | None) -> str:
    """A role in the words people use for it."""
    names = {"admin": _("organization administrator"), "coordinator": _("site coordinator"),
             "leader": _("peer leader"), "member": _("member"), "operator": _("platform operator"),
             "service": _("service account")}
    return names.get(role or "", role or "")


def _package_root() -> str:
    from pathlib import Path
    return str(Path(__file__).parent)


def _install_session_rules(app: Flask, settings: Settings) -> None:
    @app.before_request
    def end_expired_session():
        if request.endpoint in ("static", "healthz", "readyz"):
            return None
        if sessions.expired(settings):
            sessions.sign_out()
            flash(_("You were signed out after a while without activity. Please sign in again."), "info")
            return redirect(url_for("signin.start"))
        if sessions.current_person():
            sessions.touch()
        return None


def _install_request_context(app: Flask) -> None:
    @app.before_request
    def start_request():
        g.request_id_token = request_id.set(uuid.uuid4().hex)
        g.started = time.perf_counter()

    @app.after_request
    def finish_request(response):
        headers = response.headers
        if request.endpoint != "static":
            headers["Cache-Control"] = "no-store"
        headers["X-Content-Type-Options"] = "nosniff"
        # the callback's address holds a sign-in code: never send it to anyone in a Referer
        headers["Referrer-Policy"] = "no-referrer"
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers["X-Frame-Options"] = "DENY"
        if request.endpoint not in ("static", "healthz", "readyz"):
            # the endpoint only, never the query string: the callback's holds a sign-in code
            log.info("request", extra={"method": request.method, "endpoint": request.endpoint or "unmatched",
                                       "status": response.status_code,
                                       "ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1)})
        return response

    @app.teardown_request
    def reset_context(_exc):
        if token := g.pop("request_id_token", None):
            request_id.reset(token)


def _install_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_refused(error):
        return render_template("error.html", status=400, title=_("This form has expired"),
                               message=_("For your safety the form was not sent. Go back, reload the page and try again.")), 400

    @app.errorhandler(SignedOut)
    def signed_out(_error):
        sessions.sign_out()
        flash(_("Your sign-in has ended. Please sign in again."), "info")
        return redirect(url_for("signin.start"))

    @app.errorhandler(ServiceUnavailable)
    def unavailable(error):
        log.warning("service unavailable", extra={"service": error.service, "reason": getattr(error, "reason", None)})
        return render_template("error.html", status=503, title=_("Part of the platform is not answering"),
                               message=_("Please try again in a minute. Nothing you entered was lost on our side.")), 503

    @app.errorhandler(HTTPException)
    def http_error(error):
        if error.code == 404:
            return render_template("error.html", status=404, title=_("Page not found"),
                                   message=_("There is no page at this address. Check the address, or go back to the home page.")), 404
        if error.code == 405:
            return render_template("error.html", status=405, title=_("This page cannot do that"),
                                   message=_("Use the page's own buttons and forms.")), 405
        return render_template("error.html", status=error.code, title=error.name, message=error.description), error.code

    @app.errorhandler(Exception)
    def unexpected(error):
        log.exception("unexpected error")
        return render_template("error.html", status=500, title=_("Something went wrong"),
                               message=_("It was not your fault. Please try again; if it keeps happening, tell your administrator.")), 500


def _install_operational_routes(app: Flask, db) -> None:
    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", service="console")

    @app.get("/readyz")
    def readyz():
        try:
            db.command("ping")
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return jsonify(status="unavailable", service="console", reason=type(exc).__name__), 503
        return jsonify(status="ready", service="console")
