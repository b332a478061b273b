"""What each reader sees of a record: the API's member view, and self-service (what a member, a leader
and a leader's matched member see and may change)."""
from __future__ import annotations

from datetime import datetime

from intake.model.consents import _aware, consent_active

def member_view(member: dict, now: datetime) -> dict:
    """The member as the API shows it: consents as a list with whether each is in force."""
    consents = [{"purpose": p, "in_force": consent_active(c, now), **c}
                for p, c in sorted((member.get("consents") or {}).items())]
    return {**member, "consents": consents}


# --- self-service: what a member, a leader and a leader's matched member see ---------------------

# The purpose a member gives so that the peer leader they are matched with sees their email and phone.
SHARE_LEADER = "share:leader"
CONSENT_PURPOSE_MEANINGS = {
    "matching": "intake may tell matching about the member so that a peer leader can be proposed.",
    "notify:email": "the platform may send the member messages by email.",
    "notify:sms": "the platform may send the member text messages.",
    "notify:inapp": "the platform may leave the member messages in their in-app inbox.",
    SHARE_LEADER: "the peer leader the member is matched with may see the member's email and phone number.",
    "share:<program>": "the member's record may be shared with the named program.",
}
# What an organization shows its members of their own record (the organization's ``self_service``).
SELF_SERVICE_DEFAULTS = {"share_plan": True, "share_scores": False}
# What a member may change of their own record; what a leader may change of theirs.
MEMBER_SELF_FIELDS = ("preferred_name", "pronouns", "languages", "preferred_language", "contact_channels",
                      "availability")
LEADER_SELF_FIELDS = ("bio", "preferred_name", "pronouns", "languages", "preferred_language", "availability")
# A member's own view of their record: what they gave and what is in force, never staff notes or flags.
MEMBER_SELF_VIEW = ("_id", "organization_id", "site_id", "status", "first_name", "last_name", "preferred_name",
                    "pronouns", "email", "phone", "date_of_birth", "languages", "preferred_language", "time_zone",
                    "availability", "contact_channels", "meeting_mode", "leader_gender_preference")
# Match statuses intake's read model knows; open ones give the leader their minimum-necessary view.
OPEN_MATCH_STATUSES = ("proposed", "accepted", "active")
MATCH_STATUS_RANK = {"proposed": 0, "accepted": 1, "active": 2, "declined": 3, "expired": 3, "ended": 3}


def self_service(org: dict) -> dict:
    """The organization's self-service settings, the defaults filled in."""
    return {**SELF_SERVICE_DEFAULTS, **(org.get("self_service") or {})}


def member_self_view(member: dict, now: datetime) -> dict:
    """What a member sees of their own record: the fields they gave, their site and status, and the
    consents in force (each with when it was given and until when)."""
    view = {k: member.get(k) for k in MEMBER_SELF_VIEW}
    view["consents"] = [{"purpose": p, "granted_at": c.get("granted_at"), "expires_at": _aware(c.get("expires_at"))}
                        for p, c in sorted((member.get("consents") or {}).items()) if consent_active(c, now)]
    return view


def leader_public_view(leader: dict) -> dict:
    """What a member sees of their peer leader: first name, languages and the bio the leader chose to share."""
    return {"first_name": leader.get("preferred_name") or leader.get("first_name"),
            "languages": leader.get("languages") or [], "bio": leader.get("bio")}


def member_for_leader(member: dict, match: dict, now: datetime) -> dict:
    """The leader's minimum-necessary view of a member they are matched with: the name the member goes
    by, languages, availability, the plan's goal if the member shared it, and contact details only
    while the member's ``share:leader`` consent is in force. Nothing else."""
    consents = member.get("consents") or {}
    shares_contact = SHARE_LEADER in consents and consent_active(consents[SHARE_LEADER], now)
    plan = member.get("plan") or {}
    shared_goals = ([{"goal": plan["goal"], "next_steps": plan.get("next_steps") or []}]
                    if plan.get("goal") and plan.get("shared_with_leader") else [])
    return {"member_id": member["_id"], "match_id": match["match_id"], "match_status": match["status"],
            "name": member.get("preferred_name") or member.get("first_name"),
            "languages": member.get("languages") or [], "time_zone": member.get("time_zone"),
            "availability": member.get("availability") or [], "shared_goals": shared_goals,
            "contact_shared": shares_contact,
            "contact": ({"email": member.get("email"), "phone": member.get("phone"),
                         "contact_channels": member.get("contact_channels") or []} if shares_contact else None)}


def match_update(current: dict | None, status: str) -> bool:
    """Whether a match event moves intake's copy on: never back from a later status (a redelivered
    proposal after the end), and a closed match stays closed."""
    if current is None:
        return True
    return MATCH_STATUS_RANK[status] >= MATCH_STATUS_RANK.get(current.get("status"), 0) and current.get("open", True)
