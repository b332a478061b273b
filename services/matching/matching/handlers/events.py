"""Intake's events kept in matching's read model (members, leaders, sites: only what matching needs), and
what each change means for matches: ``handler(evt, uow)``, run by the shared consumer in one transaction
with the inbox. The only module ``subscriptions`` imports."""
from __future__ import annotations

from shared.clock import utcnow
from shared.unit_of_work import UnitOfWork

from matching import model
from matching.handlers.matches import end_match, recheck_leader, recheck_member
from matching.handlers.proposals import context, propose_for_member
from matching.handlers.settings import policy
from matching.repository import Store, leader_from_doc, member_from_doc, to_dt


# --- sites -----------------------------------------------------------------------------------------

def on_site_changed(evt, uow: UnitOfWork) -> None:
    data = evt.data
    Store.of(uow).upsert_site(evt.organization_id, data["site_id"],
                              {"name": data.get("name"), "time_zone": data["time_zone"],
                               "virtual_only": bool(data["virtual_only"])})


# --- members ---------------------------------------------------------------------------------------

def _member_fields(data: dict) -> dict:
    consent, until = model.matching_consent(data.get("consents"))
    return {
        "site_id": data["site_id"], "status": data["status"], "time_zone": data["time_zone"],
        "languages": data.get("languages") or [], "leader_gender_preference": data.get("leader_gender_preference"),
        "meeting_mode": data.get("meeting_mode", "either"), "availability": data.get("availability") or [],
        "substances": data.get("substances") or [], "pathways": data.get("pathways") or [],
        "co_occurring_mental_health": data.get("co_occurring_mental_health", "prefer_not_to_say"),
        "lived_experience_topics": data.get("lived_experience_topics") or [],
        "matching_consent": consent, "matching_consent_expires_at": until,
    }


def on_member_registered(evt, uow: UnitOfWork) -> None:
    org, data = evt.organization_id, evt.data
    st = Store.of(uow)
    fields = _member_fields(data)
    if not fields["time_zone"]:
        fields["time_zone"] = st.site_time_zone(org, data["site_id"]) or "UTC"
    st.save_member(org, data["member_id"], fields)
    recheck_member(uow, org, data["member_id"], utcnow())


on_member_updated = on_member_registered


def _member_patch(evt, uow: UnitOfWork, fields: dict) -> None:
    org = evt.organization_id
    st = Store.of(uow)
    stored = st.member(org, evt.data["member_id"])
    if stored is None:
        return  # we have not seen the member's registration: it will carry the whole profile
    if not model.changed_fields(stored, fields):
        return  # the same facts again: a recheck would decide as the last one did
    st.save_member(org, evt.data["member_id"], fields)
    recheck_member(uow, org, evt.data["member_id"], utcnow())


def on_member_consent_changed(evt, uow: UnitOfWork) -> None:
    consent, until = model.matching_consent(evt.data.get("consents"))
    _member_patch(evt, uow, {"matching_consent": consent, "matching_consent_expires_at": until})


def on_member_status_changed(evt, uow: UnitOfWork) -> None:
    _member_patch(evt, uow, {"status": evt.data["to_status"]})


def on_member_transferred(evt, uow: UnitOfWork) -> None:
    org, data = evt.organization_id, evt.data
    st = Store.of(uow)
    if st.member(org, data["member_id"]) is None:
        return
    now = utcnow()
    st.save_member(org, data["member_id"], {"site_id": data["to_site_id"], "time_zone": data["time_zone"]})
    current = st.open_match(org, data["member_id"])
    if current is not None:
        member = member_from_doc(st.member(org, data["member_id"]))
        table = model.LeaderTable([leader_from_doc(d) for d in st.leaders(org) if d["leader_id"] == current["leader_id"]], now)
        ctx = context(st, org, now)
        if table.leaders:
            table.remaining[:] = 1  # the member already holds a place with this leader
        ev = model.evaluate(member, table, policy(st, org)["weights"], ctx)
        if not (len(ev.feasible) and ev.rules["location"][0]):
            end_match(uow, current, by_role="system", by="system", reason_code="member_inactive",
                      reason=f"the member moved to site {data['to_site_id']}", re_propose=True, now=now)
        else:
            st.move_match_to_site(current, data["to_site_id"])
    else:
        propose_for_member(uow, org, data["member_id"], origin="new", now=now)


def on_member_erased(evt, uow: UnitOfWork) -> None:
    org, member_id = evt.organization_id, evt.data["member_id"]
    st = Store.of(uow)
    current = st.open_match(org, member_id)
    if current is not None:
        end_match(uow, current, by_role="system", by="system", reason_code="member_erased", reason=None)
    st.delete_member(org, member_id)
    st.erase_member_history(org, member_id)


# --- leaders ---------------------------------------------------------------------------------------

def _leader_fields(data: dict) -> dict:
    certified, until = model.certification_valid_until(data.get("certifications"))
    return {
        "site_ids": data.get("site_ids") or [], "status": data["status"], "time_zone": data["time_zone"],
        "languages": data.get("languages") or [], "gender": data.get("gender"),
        "meets_virtually": bool(data.get("meets_virtually")), "availability": data.get("availability") or [],
        "capacity": int(data.get("capacity") or 0), "substances": data.get("substances") or [],
        "pathways": data.get("pathways") or [], "lived_experience_areas": data.get("lived_experience_areas") or [],
        "co_occurring_mental_health_experience": bool(data.get("co_occurring_mental_health_experience")),
        "certified": certified, "certified_until": to_dt(until),
        "stretched": bool(data.get("stretched")),  # absent (older snapshots): not stretched
    }


def on_leader_registered(evt, uow: UnitOfWork) -> None:
    org, data = evt.organization_id, evt.data
    Store.of(uow).save_leader(org, data["leader_id"], _leader_fields(data))
    recheck_leader(uow, org, data["leader_id"], utcnow())


on_leader_updated = on_leader_registered


def _leader_patch(evt, uow: UnitOfWork, fields: dict) -> None:
    org = evt.organization_id
    st = Store.of(uow)
    if st.leader(org, evt.data["leader_id"]) is None:
        return  # we have not seen the leader's registration: nothing to patch
    st.save_leader(org, evt.data["leader_id"], fields)
    recheck_leader(uow, org, evt.data["leader_id"], utcnow())


def on_leader_capacity_changed(evt, uow: UnitOfWork) -> None:
    _leader_patch(evt, uow, {"capacity": evt.data["capacity"]})


def on_leader_availability_changed(evt, uow: UnitOfWork) -> None:
    _leader_patch(evt, uow, {"time_zone": evt.data["time_zone"], "availability": evt.data["availability"]})


def on_leader_deactivated(evt, uow: UnitOfWork) -> None:
    _leader_patch(evt, uow, {"status": evt.data["to_status"]})


def on_leader_reactivated(evt, uow: UnitOfWork) -> None:
    _leader_patch(evt, uow, {"status": "active"})
