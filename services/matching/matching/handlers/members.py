"""What a member reads about themselves: their current match or proposal (with the reasons in words) and
their export (everything matching holds about them). The member's id is the token's, never the caller's
choice (``access.own_member_id``)."""
from __future__ import annotations

from matching import access
from matching.repository import Store


def _match_view(doc: dict) -> dict:
    """A member's view of one of their matches: ids, status, the reasons in plain words, the expiry."""
    return {"id": doc["_id"], "leader_id": doc["leader_id"], "site_id": doc["site_id"], "status": doc["status"],
            "origin": doc.get("origin"), "proposed_at": doc.get("proposed_at"), "expires_at": doc.get("expires_at"),
            "accepted_at": doc.get("accepted_at"),
            "reasons": [part["explanation"] for part in doc.get("breakdown", [])] + list(doc.get("rules_passed", []))}


def my_match(st: Store, org: str, principal) -> dict:
    """The member's open match (a proposal to answer, or the active match), and whether they are waiting."""
    member_id = access.own_member_id(principal)
    current = st.open_match(org, member_id)
    waiting = st.waitlist_entry(org, member_id)
    st.audit(principal, "read", "member_match", member_id, org)
    return {"member_id": member_id, "match": _match_view(current) if current else None,
            "waitlist": {"since": waiting["since"], "reason": waiting.get("reason")} if waiting else None}


def _plain(doc: dict | None) -> dict | None:
    """A stored document as exported: the organization-scoped key gives way to the plain id."""
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k not in ("_id", "open_key")} | {"id": doc["_id"]}


def export(st: Store, org: str, principal) -> dict:
    """Everything matching holds about the member (right of access): the read-model copy of them (from
    intake's events), all their matches with history and reasons, their waitlist entry, and every override
    concerning them (pins, blocks, recorded exclusions, in force or lifted). Nothing of other members."""
    member_id = access.own_member_id(principal)
    member = st.member(org, member_id)
    waiting = st.waitlist_entry(org, member_id)
    st.audit(principal, "export", "member", member_id, org)
    return {"member_id": member_id, "organization_id": org, "service": "matching",
            "member": _plain(member) | {"id": member_id} if member else None,
            "matches": [_plain(m) for m in st.matches_of_member(org, member_id)],
            "waitlist": [_plain(waiting) | {"id": member_id}] if waiting else [],
            "overrides": [_plain(o) for o in st.overrides_of_member(org, member_id)]}
