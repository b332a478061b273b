"""Who may see and change what in notifications (no Flask, no MongoDB: rules over a principal and the
records a Store read). Routes ask for roles with ``require_role``; these are the finer rules."""
from __future__ import annotations

from shared.errors import Forbidden, NotFound

ADMINS = ("admin", "service")            # the organization's admins and other services
READERS_OF_THE_LOG = ("admin", "service", "coordinator")
CHANGERS_OF_PREFERENCES = ("admin", "service", "coordinator", "leader", "member")  # a member: their own
MEMBER = ("member",)  # the member's own routes (/v1/me/...)


def person_in_reach(store, principal, organization_id: str, person_id: str) -> dict:
    """The person's contact, if the caller may see them: admins anyone of the organization, a leader or a
    member themselves (the id in the token), a coordinator the people of their sites. NotFound otherwise
    (as if they did not exist)."""
    contact = store.contact(organization_id, person_id)
    if contact is None:  # not a person of the caller's organization (nor of anyone's, as far as it can tell)
        raise NotFound("No such person.")
    if principal.is_admin:
        return contact
    if principal.role == "leader" and principal.leader_id == person_id:
        return contact
    if principal.role == "member" and principal.member_id == person_id:
        return contact
    if principal.role == "coordinator" and any(principal.can_access_site(s) for s in contact.get("site_ids") or []):
        return contact
    raise NotFound("No such person.")


def own_member_id(principal) -> str:
    """The member's own id, from the token only."""
    if principal.role != "member" or not principal.member_id:
        raise Forbidden("This is a member's own route (a member token).")
    return principal.member_id


def reads_are_audited(contact: dict | None) -> bool:
    """Reads of a member's records go to the audit log (ids only)."""
    return contact is not None and contact.get("kind") == "member"


def may_see_delivery(principal, delivery: dict) -> bool:
    return principal.is_admin or principal.can_access_site(delivery.get("site_id"))


def may_see_site(principal, site_id: str) -> bool:
    return principal.can_access_site(site_id)
