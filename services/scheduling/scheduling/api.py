"""HTTP edge of the scheduling service: Blueprint + MethodView; validates, calls a handler, answers."""
from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("scheduling", __name__, url_prefix="/v1", description="Peer-led group meetings, one-on-one sessions, reminders and feeds.")
