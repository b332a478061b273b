"""Self-service: what a person sees and changes of their own, by the role of their token.

    member      their profile (what they gave, consents in force, site, status; no staff notes, no flags),
                the fields they may change, their consents (given and revoked by themselves, announced
                as every consent change is), their plan and screenings as the organization shares them
                (``self_service``), their peer leader, and the export of everything intake holds about them
    leader      their profile (and the bio, languages and availability they change), and the members they
                are matched with now, minimum necessary (``model.member_for_leader``)
    admin, coordinator  their staff record (when the token names one: ``staff:<id>``)
    operator, service   the role and organization of the token

Every read of a member's record is audited, the member's own reads and the leader's included."""
from __future__ import annotations

from typing import Callable

from shared.auth import Principal
from shared.clock import utcnow
from shared.errors import Forbidden, NotFound
from shared.unit_of_work import UnitOfWork

from intake import access, model
from intake.handlers import consents, leaders, members
from intake.repository import Store

NO_CHECK: Callable[[dict], None] = lambda doc: None  # noqa: E731


def _staff_id(principal: Principal) -> str | None:
    return principal.subject[len("staff:"):] if principal.subject.startswith("staff:") else None


def whoami(store: Store, principal: Principal) -> dict:
    """``GET /v1/me``: the caller's own record, by role."""
    me: dict = {"role": principal.role, "organization_id": principal.organization_id,
                "site_ids": sorted(principal.sites), "member": None, "leader": None, "staff": None}
    if principal.role == "member":
        member = access.own_member(store, principal)
        store.audit(principal, "read", "member", member["_id"], member["organization_id"], view="self")
        me["member"] = model.member_self_view(member, utcnow())
        me["site_ids"] = [member["site_id"]]
    elif principal.role == "leader":
        leader = access.own_leader(store, principal)
        me["leader"] = {**leader, "certifications_current": model.certifications_current(
            leader.get("certifications") or [], utcnow().date())}
        me["site_ids"] = me["leader"]["site_ids"]
    elif principal.role in ("admin", "coordinator") and _staff_id(principal):
        me["staff"] = store.staff(principal.organization_id, _staff_id(principal))
    return me


def update_me(uow: UnitOfWork, principal: Principal, patch: dict, check_etag: Callable[[dict], None]) -> dict:
    """``PATCH /v1/me``: a member or a leader changes what is theirs to change; staff details are an
    admin's (``/v1/staff``)."""
    store = Store.of(uow)
    if principal.role == "member":
        refused = sorted(set(patch) - set(model.MEMBER_SELF_FIELDS))
        if refused:
            raise Forbidden(f"You cannot change {', '.join(refused)} yourself; ask your coordinator.")
        member = access.own_member(store, principal)
        check_etag(member)
        members.update_in(uow, principal, member, patch, now=utcnow())
    elif principal.role == "leader":
        refused = sorted(set(patch) - set(model.LEADER_SELF_FIELDS))
        if refused:
            raise Forbidden(f"You cannot change {', '.join(refused)} yourself; your coordinator does.")
        leaders.update(uow, principal, principal.leader_id, patch, check_etag)
    else:
        raise Forbidden("Only members and peer leaders change their own profile here; staff details are "
                        "changed by an organization admin.")
    return whoami(store, principal)


# --- a member's consents, plan, screenings, leader and export ------------------------------------

def my_consents(store: Store, principal: Principal) -> list[dict]:
    member = access.own_member(store, principal)
    store.audit(principal, "read", "consent", member["_id"], member["organization_id"], view="self")
    return model.member_self_view(member, utcnow())["consents"]


def give_consent(uow: UnitOfWork, principal: Principal, data: dict) -> list[dict]:
    """The member gives a consent: the same use case and event as a consent staff record, recorded as
    given by the member themselves (the token's subject)."""
    member = access.own_member(Store.of(uow), principal)
    now = utcnow()
    updated = consents.grant_to(uow, principal, member, {**data, "note": None}, now)
    return model.member_self_view(updated, now)["consents"]


def revoke_consent(uow: UnitOfWork, principal: Principal, purpose: str) -> list[dict]:
    member = access.own_member(Store.of(uow), principal)
    now = utcnow()
    updated = consents.revoke_from(uow, principal, member, purpose, now)
    return model.member_self_view(updated, now)["consents"]


def _shared(store: Store, member: dict, setting: str, what: str) -> None:
    if not model.self_service(access.organization(store, member["organization_id"]))[setting]:
        raise Forbidden(f"Your organization does not show {what} here; your coordinator can go through them with you.")


def my_plan(store: Store, principal: Principal) -> dict:
    member = access.own_member(store, principal)
    _shared(store, member, "share_plan", "your plan")
    if not member.get("plan"):
        raise NotFound("You have no plan yet; your coordinator writes it with you.")
    store.audit(principal, "read", "plan", member["_id"], member["organization_id"], view="self")
    return member["plan"]


def share_plan(uow: UnitOfWork, principal: Principal, shared: bool) -> dict:
    """The member shows (or stops showing) their plan's goal to the peer leader they are matched with."""
    store = Store.of(uow)
    member = access.own_member(store, principal)
    _shared(store, member, "share_plan", "your plan")
    if not member.get("plan"):
        raise NotFound("You have no plan yet; your coordinator writes it with you.")
    plan = {**member["plan"], "shared_with_leader": shared}
    if plan != member["plan"]:
        store.replace_member({**member, "plan": plan, "version": member.get("version", 1) + 1,
                              "updated_at": utcnow()})
        store.audit(principal, "update", "plan", member["_id"], member["organization_id"],
                    fields=["shared_with_leader"])
    return plan


def my_screenings(store: Store, principal: Principal, query: dict) -> tuple[list[dict], int]:
    member = access.own_member(store, principal)
    _shared(store, member, "share_scores", "screening scores")
    store.audit(principal, "read", "screening", member["_id"], member["organization_id"], view="self")
    return store.screenings_page(member["organization_id"], member["_id"], query.get("instrument"),
                                 query["offset"], query["limit"])


def my_leader(store: Store, principal: Principal) -> dict:
    """The peer leader of the member's match in force (proposed, accepted or active), or why none."""
    member = access.own_member(store, principal)
    for match in store.open_matches(member["organization_id"], member_id=member["_id"]):
        leader = store.leader(member["organization_id"], match["leader_id"])
        if leader is not None:
            return {"waiting": False, "reason": None, "match_id": match["match_id"], "status": match["status"],
                    "leader": model.leader_public_view(leader)}
    reason = ("You are not matched with a peer leader yet. We will tell you as soon as one is proposed."
              if member.get("status") == "active" else
              "You are not matched with a peer leader: matching starts once your participation is active "
              "and you have agreed to be matched.")
    return {"waiting": True, "reason": reason, "match_id": None, "status": None, "leader": None}


def export(uow: UnitOfWork, principal: Principal) -> dict:
    """Everything intake holds about the member (right of access), whatever the self-service settings
    show in the app: the record, consents and their history, screenings, plan and its revisions, the
    matches intake knows of, and the audit entries about them (who read or changed their record)."""
    store = Store.of(uow)
    member = access.own_member(store, principal)
    org, member_id = member["organization_id"], member["_id"]
    now = utcnow()
    out = {"exported_at": now, "member": model.member_view(member, now),
           "consent_history": store.consent_log(org, member_id),
           "screenings": store.screenings_of_member(org, member_id),
           "plan": member.get("plan"), "plan_history": store.plan_history(org, member_id),
           "matches": store.matches_of_member(org, member_id),
           "audit": store.audit_entries_about(org, member_id)}
    store.audit(principal, "export", "member", member_id, org, view="self")
    return out


# --- a leader's view of the members they are matched with ---------------------------------------

def my_members(store: Store, principal: Principal) -> list[dict]:
    leader = access.own_leader(store, principal)
    now = utcnow()
    out, seen = [], set()
    for match in store.open_matches(leader["organization_id"], leader_id=leader["_id"]):
        member = store.member(leader["organization_id"], match["member_id"])
        if member is None or member.get("erased") or member["_id"] in seen:
            continue
        seen.add(member["_id"])
        store.audit(principal, "read", "member", member["_id"], leader["organization_id"], view="leader")
        out.append(model.member_for_leader(member, match, now))
    return out


def my_member(store: Store, principal: Principal, member_id: str) -> dict:
    member, match = access.matched_member(store, principal, member_id)
    store.audit(principal, "read", "member", member_id, member["organization_id"], view="leader")
    return model.member_for_leader(member, match, utcnow())
