"""HTTP edge of the notifications service: Blueprint + MethodView; validates, calls a handler, answers."""
from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("notifications", __name__, url_prefix="/v1", description="The right message, on the right channel, at the right time, once.")
