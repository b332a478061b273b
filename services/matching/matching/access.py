"""Who may see and do what in matching: the role and site rules, in one place.

A member sees their own matches and answers their own proposals (their id comes from the token, never
from a path or body); a leader sees the matches they are in; a coordinator what belongs to their sites;
an admin (and a service) the whole organization. What a caller may not see answers as if it did not exist (404), so
nothing leaks across sites.
"""
from __future__ import annotations

from shared.errors import Forbidden, NotFound, NotYetKnown
from shared.repository import site_scope

from matching.repository import Store

STAFF = ("admin", "coordinator")
ANYONE = ("admin", "coordinator", "leader", "member", "service")  # who reads matches (each only theirs)
DECIDERS = ("admin", "coordinator", "leader")  # who ends a match
ANSWERERS = DECIDERS + ("member",)  # who accepts or declines a proposal (a member only their own)
MEMBER = ("member",)  # the member's own routes (/v1/me/...)


def can_see(principal, match: dict) -> bool:
    if principal is None:
        return True
    if principal.role == "leader":
        return match["leader_id"] == principal.leader_id
    if principal.role == "member":
        return match["member_id"] == principal.member_id
    return principal.can_access_site(match["site_id"])


def own_member_id(principal) -> str:
    """The member's own id, from the token only (a member token always carries it)."""
    if principal.role != "member" or not principal.member_id:
        raise Forbidden("this is a member's own route (a member token)")
    return principal.member_id


def visible_match(st: Store, org: str, match_id: str, principal) -> dict:
    doc = st.match(org, match_id)
    if doc is None or not can_see(principal, doc):
        raise NotFound(f"no match {match_id}")
    return doc


def visible_member(st: Store, org: str, member_id: str, principal, field: str | None = None) -> dict:
    """The member from intake's events; one missing (not arrived yet, made up, another organization's or
    another site's) answers "not yet known": 404 for a path reference, 422 naming ``field`` for a body one."""
    doc = st.member(org, member_id)
    if doc is None or (principal is not None and not principal.can_access_site(doc["site_id"])):
        raise NotYetKnown("member", member_id, service="matching", field=field)
    return doc


def visible_override(st: Store, org: str, override_id: str, principal) -> dict:
    doc = st.override(org, override_id)
    if doc is None or (principal is not None and not principal.is_admin and not any(
            principal.can_access_site(m["site_id"]) for m in st.members(org, [doc["member_id"]]))):
        raise NotFound(f"no override {override_id}")
    return doc


def check_may_end(principal, reason_code: str) -> None:
    if principal.role == "leader" and reason_code != "leader_choice":
        raise Forbidden("a leader ends a match with reason_code leader_choice")


def check_may_start_batch_run(st: Store, org: str, principal, site_id: str | None) -> None:
    if site_id is None and not principal.is_admin:
        raise Forbidden("a coordinator starts batch runs for one of their sites (give site_id)")
    # Another organization's site, or (for a coordinator) a site not in their token: 404, as if unknown.
    if site_id is not None and not (principal.can_access_site(site_id) and st.site_known(org, site_id)):
        raise NotFound(f"no site {site_id}")


def can_see_batch_run(principal, run: dict) -> bool:
    """An organization-wide run is the admins'; a site's run, whoever holds the site."""
    if run.get("site_id") is None:
        return principal.is_admin
    return principal.can_access_site(run["site_id"])


def match_filters(principal, asked: dict) -> dict | None:
    """The list filters of GET /matches within what the caller may see (None: nothing to see): a leader
    only their own matches, a member only theirs, a coordinator their sites'."""
    if principal.role == "member":
        if asked.get("member_id", principal.member_id) != principal.member_id:
            return None
        return {**asked, "member_id": principal.member_id}
    if principal.role == "leader":
        if asked.get("leader_id", principal.leader_id) != principal.leader_id:
            return None
        return {**asked, "leader_id": principal.leader_id}
    others = {k: v for k, v in asked.items() if k != "site_id"}
    return {**others, **site_scope("site_id", principal.site_filter(), asked.get("site_id"))}


def sites_scope(principal, site_id: str | None = None) -> dict:
    """The site clause of a staff list (waitlist, batch runs)."""
    return site_scope("site_id", principal.site_filter(), site_id)


def visible_overrides(st: Store, org: str, principal, overrides: list[dict]) -> list[dict]:
    """Overrides of members at the caller's sites (all of them for a caller with every site)."""
    if (sites := principal.site_filter()) is None:
        return overrides
    allowed = {m["member_id"] for m in st.members(org, list({o["member_id"] for o in overrides}))
               if m["site_id"] in sites}
    return [o for o in overrides if o["member_id"] in allowed]
