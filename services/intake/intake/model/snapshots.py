"""What intake's events carry (no direct identifiers outside the restricted contacts topic), when a
contact changed, and what is kept of an erased member."""
from __future__ import annotations

from datetime import date, datetime, timezone

from intake.model.consents import consents_in_force
from intake.model.people import display_name


# --- snapshots for events (no direct identifiers) ----------------------------------------------


def member_snapshot(member: dict, now: datetime) -> dict:
    return {
        "organization_id": member["organization_id"],
        "member_id": member["_id"],
        "site_id": member["site_id"],
        "status": member["status"],
        "time_zone": member["time_zone"],
        "languages": member.get("languages") or [],
        "leader_gender_preference": member.get("leader_gender_preference"),
        "meeting_mode": member.get("meeting_mode") or "either",
        "availability": member.get("availability") or [],
        "substances": member.get("substances") or [],
        "pathways": member.get("pathways") or [],
        "co_occurring_mental_health": member.get("co_occurring_mental_health") or "prefer_not_to_say",
        "lived_experience_topics": member.get("lived_experience_topics") or [],
        "contact_channels": member.get("contact_channels") or [],
        "consents": consents_in_force(member.get("consents") or {}, now),
    }


def _iso_date(d):
    return d.isoformat() if isinstance(d, date) else d


def leader_snapshot(leader: dict) -> dict:
    return {
        "organization_id": leader["organization_id"],
        "leader_id": leader["_id"],
        "site_ids": leader["site_ids"],
        "status": leader["status"],
        "time_zone": leader["time_zone"],
        "languages": leader.get("languages") or [],
        "gender": leader.get("gender"),
        "meets_virtually": bool(leader.get("meets_virtually")),
        "availability": leader.get("availability") or [],
        "capacity": leader["capacity"],
        "substances": leader.get("substances") or [],
        "pathways": leader.get("pathways") or [],
        "lived_experience_areas": leader.get("lived_experience_areas") or [],
        "co_occurring_mental_health_experience": bool(leader.get("co_occurring_mental_health_experience")),
        "certifications": [{"name": c["name"], "issuer": c.get("issuer"), "expires_on": _iso_date(c.get("expires_on"))}
                           for c in leader.get("certifications") or []],
        # the pause on new proposals the leader asked for (their note to the coordinator stays here)
        "stretched": bool(leader.get("stretched")),
        "stretched_since": stretched_since(leader),
    }


def stretched_since(leader: dict) -> str | None:
    """When the leader said they are stretched (ISO 8601, UTC), or None when they are not."""
    since = (leader.get("stretched") or {}).get("since")
    if not isinstance(since, datetime):
        return None
    return (since if since.tzinfo else since.replace(tzinfo=timezone.utc)).isoformat()


def contact_snapshot(person: dict, kind: str, site_ids: list[str], default_language: str = "en") -> dict:
    """ContactChanged data: only on the restricted contacts topic."""
    languages = person.get("languages") or []
    return {
        "organization_id": person["organization_id"],
        "person_id": person["_id"],
        "person_kind": kind,
        "display_name": display_name(person),
        "email": person.get("email"),
        "phone": person.get("phone"),
        "preferred_language": person.get("preferred_language") or (languages[0] if languages else default_language),
        "time_zone": person["time_zone"],
        "site_ids": list(site_ids),
        "channels": person.get("contact_channels") or [],
    }


CONTACT_FIELDS = ("first_name", "preferred_name", "email", "phone", "preferred_language", "languages",
                  "time_zone", "contact_channels", "site_id", "site_ids")


def contact_changed(before: dict, after: dict) -> bool:
    return any(before.get(f) != after.get(f) for f in CONTACT_FIELDS)


def erased_member(member: dict, at: datetime) -> dict:
    """What is kept of an erased member: ids and the fact of erasure, nothing that identifies them."""
    return {"_id": member["_id"], "organization_id": member["organization_id"], "site_id": member.get("site_id"),
            "status": "erased", "erased": True, "erased_at": at, "version": member.get("version", 0) + 1}
