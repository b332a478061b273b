"""Who may do what in intake, and what a caller may see: every record is read through these, so a
record of another organization or outside a coordinator's sites answers like one that does not exist.

Roles: operator creates organizations; admin manages everything of their organization; coordinator
works within the sites of their token; leader reads and edits their own profile and sees the members they
are matched with (minimum necessary, ``matched_member``); member reads and changes only their own record
(``own_member``); service reads.
"""
from __future__ import annotations

from shared.auth import Principal
from shared.errors import Forbidden, Gone, Invalid, NotFound

from intake.repository import Store

STAFF = ("admin", "coordinator")
READERS = ("admin", "coordinator", "service")
ANYONE_OF_THE_ORGANIZATION = ("admin", "coordinator", "service", "leader")
COORDINATOR_ONLY_LEADER_FIELDS = {"site_ids", "capacity", "certifications"}


def organization(store: Store, organization_id: str) -> dict:
    org = store.organization(organization_id)
    if org is None:
        raise NotFound("The organization does not exist (a platform operator creates it first).")
    return org


def readable_organization(store: Store, principal: Principal, organization_id: str) -> dict:
    """Operators read any organization; everyone else only their own."""
    if principal.role != "operator" and principal.organization_id != organization_id:
        raise NotFound("No such organization.")
    return organization(store, organization_id)


def site(store: Store, principal: Principal, site_id: str, field: str | None = None) -> dict:
    """A site of the caller's organization and sites; named in a body (``field``), a 422 naming it."""
    found = store.site(principal.organization_id, site_id)
    if found is None or not principal.can_access_site(site_id):
        if field:
            raise Invalid({field: [f"No site {site_id!r} that you can use in your organization."]})
        raise NotFound("No such site.")
    return found


def sites(store: Store, principal: Principal, site_ids: list[str]) -> list[dict]:
    """The sites a person is given (each once, in order): every one must be the caller's."""
    return [site(store, principal, s, field="site_ids") for s in dict.fromkeys(site_ids)]


def staff(store: Store, principal: Principal, staff_id: str) -> dict:
    found = store.staff(principal.organization_id, staff_id)
    if found is None:
        raise NotFound("No such staff member.")
    return found


def member(store: Store, principal: Principal, member_id: str) -> dict:
    found = store.member(principal.organization_id, member_id)
    if found is None or not principal.can_access_site(found.get("site_id")):
        raise NotFound("No such member.")
    if found.get("erased"):
        raise Gone("This member's record was erased on request.")
    return found


def leader_visible(principal: Principal, leader: dict) -> bool:
    """A leader sees themselves; admins every leader; coordinators those serving one of their sites."""
    if principal.role == "leader":
        return principal.leader_id == leader["_id"]
    return principal.is_admin or any(principal.can_access_site(s) for s in leader["site_ids"])


def leader(store: Store, principal: Principal, leader_id: str) -> dict:
    found = store.leader(principal.organization_id, leader_id)
    if found is None or not leader_visible(principal, found):
        raise NotFound("No such leader.")
    return found


def check_leader_patch(principal: Principal, patch: dict) -> None:
    """A leader edits their own profile, but not their sites, capacity or certifications."""
    if principal.role == "leader" and set(patch) & COORDINATOR_ONLY_LEADER_FIELDS:
        raise Forbidden("Sites, capacity and certifications are changed by your coordinator.")


def import_report(store: Store, principal: Principal, import_id: str) -> dict:
    found = store.import_report(principal.organization_id, import_id)
    if found is None or not principal.can_access_site(found["site_id"]):
        raise NotFound("No such import.")
    return found


# --- self-service ----------------------------------------------------------------------------------

def own_member(store: Store, principal: Principal) -> dict:
    """The member a member token names: only their own record, ever."""
    if principal.role != "member":
        raise Forbidden("Only a member reads and changes their own record here.")
    found = store.member(principal.organization_id, principal.member_id)
    if found is None:
        raise NotFound("Your record was not found in this organization.")
    if found.get("erased"):
        raise Gone("Your record was erased on request.")
    return found


def check_leader_own_status(principal: Principal, to_status: str) -> None:
    """A peer leader goes on leave and comes back themself (``access.leader`` keeps them to their own
    record); retiring is decided by staff."""
    if principal.role == "leader" and to_status not in ("on_leave", "active"):
        raise Forbidden("A peer leader can go on leave or come back; your coordinator records retiring.")


def own_leader(store: Store, principal: Principal) -> dict:
    if principal.role != "leader":
        raise Forbidden("Only a peer leader reads their own members here.")
    found = store.leader(principal.organization_id, principal.leader_id)
    if found is None:
        raise NotFound("Your peer leader record was not found in this organization.")
    return found


def matched_member(store: Store, principal: Principal, member_id: str) -> tuple[dict, dict]:
    """A member the calling leader is matched with now (proposed, accepted or active), and that match.
    Any other member, or one whose match has ended, answers like one that does not exist."""
    own_leader(store, principal)
    matches = store.open_matches(principal.organization_id, member_id=member_id, leader_id=principal.leader_id)
    found = store.member(principal.organization_id, member_id) if matches else None
    if found is None or found.get("erased"):
        raise NotFound("No such member among those you are matched with.")
    return found, matches[0]
