"""Decisions in plain words: a pair's score breakdown, the hard rules it passed or failed, and why
nobody can take a member now."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from matching.model.availability import describe_availability
from matching.model.lifecycle import ELIGIBLE_MEMBER_STATUSES
from matching.model.people import Context, _language_base, _norm, language_name
from matching.model.scoring import (PART_TITLES, PARTS, RULES, TARGET_OVERLAP_HOURS, Evaluation, LeaderTable,
                                     load_fraction, member_consent_ok)

def _listing(values: Iterable[str]) -> str:
    values = sorted(values)
    if not values:
        return "none"
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def explain(evaluation: Evaluation, table: LeaderTable, i: int, weights: dict[str, float],
            ctx: Context) -> tuple[float, list[dict], list[str]]:
    """(score, breakdown parts, hard rules passed in words) for leader ``i`` of ``table``."""
    member, leader = evaluation.member, table.leaders[i]
    f = {p: float(evaluation.fractions[p][i]) for p in PARTS}
    # The load as it is now (a batch run may have given the leader members since it was evaluated).
    f["leader_load"] = float(load_fraction(leader.open_count, leader.capacity))
    shared_sub = _norm(member.substances) & _norm(leader.substances)
    shared_path = _norm(member.pathways) & _norm(leader.pathways)
    shared_topics = _norm(member.lived_experience_topics) & _norm(leader.lived_experience_areas)
    hours = float(evaluation.overlap_hours[i])
    words = {}
    if not (_norm(member.substances) or _norm(member.pathways)):
        words["substances_pathway"] = "The member named no substances or pathway, so this part counts half."
    else:
        words["substances_pathway"] = (f"Shared substances: {_listing(shared_sub)}; "
                                       f"shared recovery pathway: {_listing(shared_path)}.")
    if not _norm(member.lived_experience_topics):
        words["lived_experience"] = "The member named no lived-experience topics, so this part counts half."
    else:
        words["lived_experience"] = (f"{len(shared_topics)} of the member's {len(_norm(member.lived_experience_topics))} "
                                     f"topics are in the leader's lived experience ({_listing(shared_topics)}).")
    words["availability"] = (f"They have {hours:g} hours a week in common "
                             f"({TARGET_OVERLAP_HOURS:g} or more earn the full points).")
    if member.co_occurring_mental_health == "yes":
        words["co_occurring"] = ("The member lives with a co-occurring mental health condition and the leader has "
                                 "that experience." if f["co_occurring"] else
                                 "The member lives with a co-occurring mental health condition; the leader has not "
                                 "named that experience.")
    else:
        words["co_occurring"] = "Not a need the member named, so the full points are given."
    words["leader_load"] = (f"The leader has {leader.open_count} of {leader.capacity} places taken; "
                            "less busy leaders score higher, to spread members out.")
    breakdown = [{"part": p, "points": round(weights[p] * f[p], 2), "max_points": round(weights[p], 2),
                  "explanation": f"{PART_TITLES[p]}: {words[p]}"} for p in PARTS]
    score = round(min(100.0, sum(b["points"] for b in breakdown)), 2)
    return score, breakdown, rules_in_words(evaluation, table, i, ctx)


def rules_in_words(evaluation: Evaluation, table: LeaderTable, i: int, ctx: Context) -> list[str]:
    member, leader = evaluation.member, table.leaders[i]
    shared = sorted({_language_base(c) for c in _norm(member.languages)}
                    & {_language_base(c) for c in _norm(leader.languages)})
    same_site = member.site_id.lower() in _norm(leader.site_ids)
    texts = {
        "consent": "The member has given matching consent and it has not expired.",
        "member_status": f"The member is {member.status.replace('_', ' ')}.",
        "leader_active": "The leader is active.",
        "not_stretched": "The leader is taking new members.",
        "certified": "The leader holds a current peer-support certification.",
        "capacity": f"The leader has room ({leader.open_count} of {leader.capacity} places taken).",
        "location": ("They are at the same site." if same_site and evaluation.rules["location"][i]
                     and member.meeting_mode != "virtual" and member.site_id not in ctx.virtual_only_sites
                     else "Both are open to meeting virtually."),
        "language": f"They share a language: {_listing(language_name(c) for c in shared)}.",
        "gender": ("The leader's gender matches the member's preference."
                   if (member.leader_gender_preference or "").strip() else "The member has no leader-gender preference."),
        "availability": f"Their weekly availability overlaps by {float(evaluation.overlap_hours[i]):g} hours (compared in UTC).",
        "not_excluded": "No coordinator block, and the member has not turned this leader down before.",
    }
    return [texts[r] for r in RULES if evaluation.rules[r][i]]


def rules_failed_in_words(evaluation: Evaluation, i: int) -> list[str]:
    texts = {
        "consent": "no matching consent in force", "member_status": "the member is not active",
        "leader_active": "the leader is not active", "not_stretched": "the leader said they are stretched (new proposals paused)",
        "certified": "no current certification",
        "capacity": "the leader is full", "location": "not at the member's site and not both virtual",
        "language": "no shared language", "gender": "does not match the gender preference",
        "availability": "no weekly time in common", "not_excluded": "blocked, or turned down before",
    }
    return [texts[r] for r in RULES if not evaluation.rules[r][i]]


def waitlist_reason(evaluation: Evaluation, table: LeaderTable, ctx: Context) -> tuple[str, list[str]]:
    """Why nobody can take this member now, in words: the rules are applied one after another and
    the first that leaves nobody is named, with the ones that still held before it."""
    member = evaluation.member
    if not member_consent_ok(member, ctx.now):
        return "The member has not given matching consent (or it has expired).", ["no_consent"]
    if member.status not in ELIGIBLE_MEMBER_STATUSES:
        return f"The member is {member.status.replace('_', ' ')}.", ["member_inactive"]
    languages = " or ".join(sorted(language_name(c) for c in {_language_base(c) for c in _norm(member.languages)})) \
        or "the member's language"
    site = ctx.site_in_words(member.site_id)
    where = (f"at {site}" if member.meeting_mode == "in_person"
             else f"at {site} or meeting virtually" if member.meeting_mode == "either"
             else "meeting virtually")
    pref = (member.leader_gender_preference or "").strip()
    steps = [
        ("leader_active", "no_active_leader", "active", None),
        ("certified", "no_certified_leader", "certified", None),
        ("location", "no_leader_at_site", None, where),
        ("language", "no_shared_language", None, f"who speaks {languages}"),
        ("gender", "no_gender_match", None, f"of gender {pref}" if pref else None),
        ("availability", "no_availability_overlap", None,
         f"with time in common with the member's {describe_availability(member.availability, member.time_zone)}"),
        ("not_excluded", "all_excluded", None, "not blocked or turned down before"),
        ("capacity", "no_capacity", None, "with room for another member"),
        # last: the member would have had someone, but that leader asked for a pause
        ("not_stretched", "leaders_stretched", None, None),
    ]
    alive = np.ones(len(table.leaders), dtype=bool)
    adjectives, phrases = [], []
    for rule, code, adjective, phrase in steps:
        after = alive & evaluation.rules[rule]
        if adjective:
            adjectives.append(adjective)
        if phrase:
            phrases.append(phrase)
        if not after.any():
            if code == "leaders_stretched":
                return ("A peer leader who could take the member said they are stretched, so new proposals to "
                        "them are paused; the member waits until that is lifted or another leader has room."), [code]
            described = " ".join(filter(None, [", ".join(adjectives), "leader"]))
            text = "No " + " ".join([described] + phrases)
            return text + ".", [code]
        alive = after
    return "No leader can take the member now.", ["unknown"]
