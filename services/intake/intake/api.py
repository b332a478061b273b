"""HTTP edge of the intake service: Blueprint + MethodView; validates, calls a handler, answers."""
from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("intake", __name__, url_prefix="/v1", description="Organizations, sites, members, peer leaders, consents, screenings and plans.")
