"""HTTP edge of the matching service: Blueprint + MethodView; validates, calls a handler, answers."""
from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("matching", __name__, url_prefix="/v1", description="Pairs each member with the right peer leader, and explains why.")
