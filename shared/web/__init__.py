"""The HTTP edge every service shares: app factory, problem+json errors, auth, pagination."""
from shared.web.app import create_service_app  # noqa: F401
from shared.web.blueprint import Blueprint  # noqa: F401
from shared.web.auth import current_principal, public, require_organization, require_role  # noqa: F401
from shared.web.errors import problem_response  # noqa: F401
