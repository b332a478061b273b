"""The services' flask-smorest Blueprint: the same, but its ``@blp.arguments(SchemaClass)`` loads with one schema
instance made when the view is declared. Given a class, webargs makes a new instance for every request, and
marshmallow deep-copies every declared field to make one (about a twentieth of a list call's CPU, profiled).
Loading only reads the instance (marshmallow 4 has no per-schema context), so requests can share it."""
from __future__ import annotations

import flask_smorest


class Blueprint(flask_smorest.Blueprint):
    def arguments(self, schema, *args, **kwargs):
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)
