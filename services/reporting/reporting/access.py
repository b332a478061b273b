"""Who may pull which report: an organization admin the whole organization (or one site), a site
coordinator their own sites only. Nobody else sees reports (peer leaders, members and internal service
accounts answer 403). A site the caller does not hold gives an empty report, as if it had nobody."""
from __future__ import annotations

from shared.auth import Principal

READERS = ("admin", "coordinator")


def site_filter(principal: Principal) -> list[str] | None:
    """None: every site of the organization; else the caller's sites."""
    return principal.site_filter()
