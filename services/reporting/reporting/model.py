"""The figures of the outcome report and the rules that protect small numbers: pure functions over the
per-member facts the handlers keep (no Flask, MongoDB or Kafka; unit-tested).

A member's facts (``MemberFacts``-shaped dict, see ``new_member``) hold times and codes only: no id of a
person. Every list in it is kept free of duplicates by an event's own key (match id, session id,
occurrence id, screening id, event time), so an event applied twice or late changes nothing.
"""
from __future__ import annotations

import bisect
import hashlib
import hmac
import math
import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

SUPPRESSED = "fewer than {k}"
RETENTION_DAYS = (30, 90, 180)
ENGAGED_WINDOW_DAYS = 30
# Which way is better for each screening instrument's total (BARC-10: recovery capital, higher is better;
# the others screen for harm, lower is better).
HIGHER_IS_BETTER = {"BARC-10": True, "AUDIT-C": False, "DAST-10": False, "PHQ-2": False}


# --- pseudonyms ------------------------------------------------------------------------------------

def pseudonym(key: str, organization_id: str, person_id: str) -> str:
    """The keyed digest the database stores instead of a person's id (the key is never stored)."""
    return hmac.new(key.encode(), f"{organization_id}:{person_id}".encode(), hashlib.sha256).hexdigest()[:32]


def erasure_marker(key: str, organization_id: str, person_id: str) -> str:
    """A second, unrelated digest that only says "this person was erased" (so late events are dropped);
    no other document carries it, so it links to nothing."""
    return hmac.new(key.encode(), f"erased:{organization_id}:{person_id}".encode(), hashlib.sha256).hexdigest()[:32]


# --- per-member facts -------------------------------------------------------------------------------

def new_member(organization_id: str) -> dict:
    return {"organization_id": organization_id, "site_id": None, "site_at": None, "onboarded_at": None,
            "language": None, "pathways": [], "statuses": [], "proposals": [], "accepted": [], "declines": [],
            "waitlisted": [], "sessions": [], "attendance": [], "screenings": [], "flags": [], "resolved": []}


def _add(items: list, item: dict, key: str) -> list:
    """``items`` with ``item`` unless one with the same ``key`` value is there (idempotent)."""
    if any(existing.get(key) == item.get(key) for existing in items):
        return items
    return sorted([*items, item], key=lambda x: (x["at"], str(x.get(key))))


def anonymous(doc: dict) -> dict:
    """An erased member's facts: times, codes and totals only. The ids other services gave to their
    matches, sessions, screenings and occurrences are dropped too (they lead back to the person there)."""
    out = {k: v for k, v in doc.items() if k not in ("_id", "pseudonym")}
    for field, value in out.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            out[field] = [{k: v for k, v in item.items() if k != "id"} for item in value]
    return out


def place(doc: dict, site_id: str | None, at: datetime) -> dict:
    """The member's site: the latest one an event says (transfers move a member's figures with them)."""
    if site_id and (doc["site_at"] is None or at >= doc["site_at"]):
        return {**doc, "site_id": site_id, "site_at": at}
    return doc


def registered(doc: dict, data: dict, at: datetime) -> dict:
    doc = place(doc, data["site_id"], at)
    onboarded = at if doc["onboarded_at"] is None else min(doc["onboarded_at"], at)
    doc = {**doc, "onboarded_at": onboarded}
    return profile(status(doc, data["status"], at), data, at)


def profile(doc: dict, data: dict, at: datetime) -> dict:
    if doc.get("profile_at") and doc["profile_at"] > at:
        return doc
    languages = data.get("languages") or []
    return {**doc, "language": languages[0] if languages else None, "pathways": sorted(set(data.get("pathways") or [])),
            "profile_at": at}


def status(doc: dict, value: str, at: datetime) -> dict:
    return {**doc, "statuses": _add(doc["statuses"], {"at": at, "status": value}, "at")}


def status_at(statuses: list[dict], when: datetime) -> str | None:
    current = None
    for entry in statuses:
        if entry["at"] <= when:
            current = entry["status"]
    return current


def add(doc: dict, field: str, item: dict, key: str) -> dict:
    return {**doc, field: _add(doc[field], item, key)}


# --- small statistics -------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by the nearest-rank method (a value someone actually had)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def spread(values: list[float]) -> dict:
    return {"n": len(values), "median": round(statistics.median(values), 1) if values else None,
            "p90": round(percentile(values, 90), 1) if values else None}


def days(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 86400


# --- periods ----------------------------------------------------------------------------------------

MAX_RANGE_DAYS = 5 * 366   # a report covers at most five years: a longer one is a mistake, and a slow answer


def default_range(today: date) -> tuple[date, date]:
    """The range a report covers when the caller names none: the first of the month 11 months ago to today."""
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    for _ in range(10):
        first = (first - timedelta(days=1)).replace(day=1)
    return first, today


def report_range(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    """The range a report covers: what the caller named; a 'to' alone starts 11 months before its month, a
    'from' alone runs to today, neither is the default range."""
    last = last or today
    return first or default_range(last)[0], last


@dataclass(frozen=True)
class Period:
    start: datetime   # inclusive
    end: datetime     # exclusive

    @classmethod
    def of(cls, first: date, last: date) -> "Period":
        """From the first day through the last day (both included), in UTC."""
        return cls(datetime.combine(first, datetime.min.time(), timezone.utc),
                   datetime.combine(last + timedelta(days=1), datetime.min.time(), timezone.utc))

    def __contains__(self, when: datetime | None) -> bool:
        return when is not None and self.start <= when < self.end

    def months(self) -> list["Period"]:
        out, cursor = [], self.start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        while cursor < self.end:
            nxt = (cursor + timedelta(days=32)).replace(day=1)
            out.append(Period(max(cursor, self.start), min(nxt, self.end)))
            cursor = nxt
        return out

    @property
    def label(self) -> str:
        return self.start.strftime("%Y-%m")


def _engaged_times(m: dict) -> list[datetime]:
    times = m.get("_engaged_times")  # computed once per member and report (the dict is the report's copy)
    if times is None:
        times = sorted([s["at"] for s in m["sessions"]] + [a["at"] for a in m["attendance"] if a["present"]])
        m["_engaged_times"] = times
    return times


def engaged_between(m: dict, start: datetime, end: datetime) -> bool:
    times = _engaged_times(m)
    i = bisect.bisect_left(times, start)
    return i < len(times) and times[i] < end


# --- the figures ------------------------------------------------------------------------------------

def reach(members: list[dict], leaders: list[dict], period: Period) -> dict:
    onboarded = [m for m in members if m["onboarded_at"] in period]
    by_language: dict[str, int] = {}
    by_pathway: dict[str, int] = {}
    for m in onboarded:
        lang = m.get("language") or "not recorded"
        by_language[lang] = by_language.get(lang, 0) + 1
        for p in m.get("pathways") or ["not recorded"]:
            by_pathway[p] = by_pathway.get(p, 0) + 1

    def moved_to(target: str, p: Period) -> int:
        return sum(1 for m in members if any(s["status"] == target and s["at"] in p for s in m["statuses"]))

    def active_at(when: datetime) -> int:
        return sum(1 for m in members if m["onboarded_at"] and m["onboarded_at"] < when
                   and status_at(m["statuses"], when - timedelta(microseconds=1)) == "active")

    def leaders_at(when: datetime) -> int:
        return sum(1 for lead in leaders if status_at(lead["statuses"], when - timedelta(microseconds=1)) == "active")

    monthly = [{"month": p.label, "onboarded": sum(1 for m in onboarded if m["onboarded_at"] in p),
                "active": active_at(p.end), "discharged": moved_to("discharged", p),
                "graduated": moved_to("graduated", p), "leaders_active": leaders_at(p.end)} for p in period.months()]
    return {"onboarded": len(onboarded), "active_at_end": active_at(period.end),
            "discharged": moved_to("discharged", period), "graduated": moved_to("graduated", period),
            "leaders_active_at_end": leaders_at(period.end),
            "by_language": dict(sorted(by_language.items())), "by_pathway": dict(sorted(by_pathway.items())),
            "monthly": monthly}


def access(members: list[dict], period: Period) -> dict:
    onboarded = [m for m in members if m["onboarded_at"] in period]
    to_proposal = [days(m["onboarded_at"], m["proposals"][0]["at"]) for m in onboarded if m["proposals"]]
    to_match = [days(m["onboarded_at"], m["accepted"][0]["at"]) for m in onboarded if m["accepted"]]
    waiting = [days(since, period.end) for m in members if (since := waiting_since(m, period.end))]
    declines: dict[str, int] = {}
    for m in members:
        for d in m["declines"]:
            if d["at"] in period:
                declines[d["reason"]] = declines.get(d["reason"], 0) + 1
    return {"days_to_first_proposal": spread(to_proposal), "days_to_accepted_match": spread(to_match),
            "waiting_at_end": {"members": len(waiting), **{k: v for k, v in spread(waiting).items() if k != "n"}},
            "declined": sum(declines.values()), "declined_by_reason": dict(sorted(declines.items()))}


def waiting_since(m: dict, when: datetime) -> datetime | None:
    """When the member began waiting, if at ``when`` they were on the waitlist: waitlisted, with no proposal
    since, still active, and not erased from the programme's view."""
    spells = [w["at"] for w in m["waitlisted"] if w["at"] < when]
    if not spells or m["onboarded_at"] is None or status_at(m["statuses"], when) not in ("active", None):
        return None
    last_offer = max([p["at"] for p in m["proposals"] if p["at"] < when], default=None)
    started = [s for s in spells if last_offer is None or s > last_offer]
    return min(started) if started else None


def engagement(members: list[dict], series_names: dict[str, str], period: Period, now: datetime) -> dict:
    sessions = [(m, s) for m in members for s in m["sessions"] if s["at"] in period]
    attended = [(m, a) for m in members for a in m["attendance"] if a["at"] in period]
    with_sessions = {id(m) for m, _ in sessions}
    attending = {id(m) for m, a in attended if a["present"]}
    series: dict[str, dict] = {}
    for m, a in attended:
        row = series.setdefault(a["meeting_id"], {"present": 0, "recorded": 0, "people": set()})
        row["recorded"] += 1
        row["present"] += int(a["present"])
        row["people"].add(id(m))
    by_series = [{"meeting": series_names.get(mid, "a meeting"), "members": len(row["people"]),
                  "present": row["present"], "recorded": row["recorded"],
                  "attendance_rate": round(row["present"] / row["recorded"], 3)}
                 for mid, row in sorted(series.items(), key=lambda kv: series_names.get(kv[0], kv[0]))]
    as_of = min(period.end, now)
    retention = {}
    for n in RETENTION_DAYS:
        cohort = [m for m in members if m["onboarded_at"] in period and m["onboarded_at"] + timedelta(days=n) <= as_of]
        engaged = sum(1 for m in cohort if engaged_between(m, m["onboarded_at"] + timedelta(days=n - ENGAGED_WINDOW_DAYS),
                                                        m["onboarded_at"] + timedelta(days=n)))
        retention[f"day_{n}"] = {"cohort": len(cohort), "engaged": engaged, "not_engaged": len(cohort) - engaged,
                                 "share": round(engaged / len(cohort), 3) if cohort else None}
    monthly = [{"month": p.label, "sessions_held": sum(1 for _, s in sessions if s["at"] in p),
                "meeting_attendances": sum(1 for _, a in attended if a["present"] and a["at"] in p),
                "members_engaged": sum(1 for m in members if engaged_between(m, p.start, p.end))}
               for p in period.months()]
    return {"sessions_held": len(sessions), "members_with_sessions": len(with_sessions),
            "sessions_per_member": round(len(sessions) / len(with_sessions), 2) if with_sessions else None,
            "meeting_attendances": sum(1 for _, a in attended if a["present"]), "members_attending": len(attending),
            "attendance_by_series": by_series, "retention": retention, "monthly": monthly}


def recovery_capital(members: list[dict], period: Period) -> dict:
    """First vs latest total per instrument, for members with two or more screenings of it, the latest
    recorded in the period."""
    out = {}
    for instrument, higher_better in HIGHER_IS_BETTER.items():
        changes = []
        for m in members:
            taken = [s for s in m["screenings"] if s["instrument"] == instrument and s["at"] < period.end]
            if len(taken) >= 2 and taken[-1]["at"] in period:
                change = taken[-1]["total"] - taken[0]["total"]
                changes.append(change if higher_better else -change)
        out[instrument] = {"higher_is_better": higher_better, "members": len(changes),
                           "mean_change": round(statistics.fmean(changes), 2) if changes else None,
                           "improved": sum(1 for c in changes if c > 0), "unchanged": sum(1 for c in changes if c == 0),
                           "worse": sum(1 for c in changes if c < 0)}
    return out


def flag_episodes(m: dict) -> list[tuple[datetime, datetime | None]]:
    """(raised, resolved or None): a flag raised while one is open joins it; a resolution closes it."""
    marks = sorted([(f["at"], 0) for f in m["flags"]] + [(r["at"], 1) for r in m["resolved"]])
    episodes, open_since = [], None
    for at, kind in marks:
        if kind == 0 and open_since is None:
            open_since = at
        elif kind == 1 and open_since is not None:
            episodes.append((open_since, at))
            open_since = None
    if open_since is not None:
        episodes.append((open_since, None))
    return episodes


def safety(members: list[dict], period: Period) -> dict:
    raised = [(m, f) for m in members for f in m["flags"] if f["at"] in period]
    episodes = [(m, e) for m in members for e in flag_episodes(m) if e[0] in period]
    hours = [(e[1] - e[0]).total_seconds() / 3600 for _, e in episodes if e[1] is not None and e[1] < period.end]
    open_at_end = sum(1 for m in members if any(e[0] < period.end and (e[1] is None or e[1] >= period.end)
                                                for e in flag_episodes(m)))
    monthly = [{"month": p.label, "flags_raised": sum(1 for _, f in raised if f["at"] in p)} for p in period.months()]
    return {"flags_raised": len(raised), "members_flagged": len({id(m) for m, _ in raised}),
            "resolved": len(hours), "hours_to_resolve": spread(hours), "members_open_at_end": open_at_end,
            "monthly": monthly}


def communication(messages: list[dict], period: Period) -> dict:
    """Counts of messages (``at``, ``channel``, ``outcome``) by channel and outcome, and by month: one pass."""
    outcomes_ = ("delivered", "failed", "unsubscribed")
    by_channel: dict[str, dict[str, int]] = {}
    per_month: dict[str, dict[str, int]] = {}
    for c in messages:
        if c["at"] not in period or c["outcome"] not in outcomes_:
            continue
        by_channel.setdefault(c["channel"], dict.fromkeys(outcomes_, 0))[c["outcome"]] += 1
        per_month.setdefault(c["at"].strftime("%Y-%m"), dict.fromkeys(outcomes_, 0))[c["outcome"]] += 1
    by_channel = dict(sorted(by_channel.items()))
    monthly = [{"month": p.label, **per_month.get(p.label, dict.fromkeys(outcomes_, 0))} for p in period.months()]
    totals = {o: sum(row[o] for row in by_channel.values()) for o in outcomes_}
    return {**totals, "by_channel": by_channel, "monthly": monthly}


def outcomes(members: list[dict], leaders: list[dict], messages: list[dict], series_names: dict[str, str],
             period: Period, now: datetime) -> dict:
    """Every figure, before suppression (``suppress`` makes it publishable)."""
    members = [m for m in members if m.get("onboarded_at") is not None]  # known only from a registration
    return {"reach": reach(members, leaders, period), "access": access(members, period),
            "engagement": engagement(members, series_names, period, now),
            "recovery_capital": recovery_capital(members, period), "safety": safety(members, period),
            "communication": communication(messages, period)}


# --- small-cell suppression -------------------------------------------------------------------------
# A count of 1 to k-1 is hidden ("fewer than k"; zero counts nobody and is shown). Complementary
# suppression: wherever shown figures add up to a shown total (months to the period, languages to the
# members onboarded, improved + unchanged + worse to the members behind them, ...), a single hidden
# figure could be recovered by subtraction, so the next smallest figure of that sum is hidden too, and
# a hidden total whose parts are all shown gets one part hidden. Repeated until nothing changes, so a
# figure hidden for one sum is protected in every other sum it belongs to. A median, percentile, mean or
# rate is hidden when the number of people behind it is hidden or below k.

Path = tuple


def _get(tree, path: Path):
    for part in path:
        tree = tree[part]
    return tree


def _set(tree, path: Path, value) -> None:
    for part in path[:-1]:
        tree = tree[part]
    tree[path[-1]] = value


def _months(report: dict, section: str, field: str) -> list[Path]:
    return [(section, "monthly", i, field) for i in range(len(report[section]["monthly"]))]


def cells_and_sums(report: dict) -> tuple[list[Path], list[tuple[Path, list[Path]]], list[tuple[Path, Path]]]:
    """(every count, every (total, parts) sum, every (statistic, count of people behind it))."""
    r, a, e, rc, s, c = (report[k] for k in ("reach", "access", "engagement", "recovery_capital", "safety",
                                             "communication"))
    counts: list[Path] = []
    sums: list[tuple[Path, list[Path]]] = []
    stats: list[tuple[Path, Path]] = []
    for f in ("onboarded", "active_at_end", "discharged", "graduated", "leaders_active_at_end"):
        counts.append(("reach", f))
    langs = [("reach", "by_language", k) for k in r["by_language"]]
    counts += langs + [("reach", "by_pathway", k) for k in r["by_pathway"]]
    sums.append((("reach", "onboarded"), langs))
    for f in ("onboarded", "active", "discharged", "graduated", "leaders_active"):
        counts += _months(report, "reach", f)
    for f in ("onboarded", "discharged", "graduated"):
        sums.append((("reach", f), _months(report, "reach", f)))
    for f in ("days_to_first_proposal", "days_to_accepted_match"):
        counts.append(("access", f, "n"))
        stats += [(("access", f, "median"), ("access", f, "n")), (("access", f, "p90"), ("access", f, "n"))]
    counts.append(("access", "waiting_at_end", "members"))
    stats += [(("access", "waiting_at_end", k), ("access", "waiting_at_end", "members")) for k in ("median", "p90")]
    reasons = [("access", "declined_by_reason", k) for k in a["declined_by_reason"]]
    counts += [("access", "declined")] + reasons
    sums.append((("access", "declined"), reasons))
    for f in ("sessions_held", "members_with_sessions", "meeting_attendances", "members_attending"):
        counts.append(("engagement", f))
    stats.append((("engagement", "sessions_per_member"), ("engagement", "members_with_sessions")))
    series_present = []
    for i, _row in enumerate(e["attendance_by_series"]):
        base = ("engagement", "attendance_by_series", i)
        counts += [base + ("members",), base + ("present",), base + ("absent",), base + ("recorded",)]
        sums.append((base + ("recorded",), [base + ("present",), base + ("absent",)]))
        # the rate times the recorded count gives present back: hidden with either part
        stats += [(base + ("attendance_rate",), base + ("members",)), (base + ("attendance_rate",), base + ("present",)),
                  (base + ("attendance_rate",), base + ("absent",))]
        series_present.append(base + ("present",))
    if series_present:  # the attendances are the series' present counts added up
        sums.append((("engagement", "meeting_attendances"), series_present))
    for key in e["retention"]:
        base = ("engagement", "retention", key)
        counts += [base + ("cohort",), base + ("engaged",), base + ("not_engaged",)]
        sums.append((base + ("cohort",), [base + ("engaged",), base + ("not_engaged",)]))
        stats.append((base + ("share",), base + ("engaged",)))
        stats.append((base + ("share",), base + ("not_engaged",)))
    for f in ("sessions_held", "meeting_attendances", "members_engaged"):
        counts += _months(report, "engagement", f)
    for f in ("sessions_held", "meeting_attendances"):
        sums.append((("engagement", f), _months(report, "engagement", f)))
    for inst in rc:
        base = ("recovery_capital", inst)
        parts = [base + ("improved",), base + ("unchanged",), base + ("worse",)]
        counts += [base + ("members",)] + parts
        sums.append((base + ("members",), parts))
        stats.append((base + ("mean_change",), base + ("members",)))
    for f in ("flags_raised", "members_flagged", "resolved", "members_open_at_end"):
        counts.append(("safety", f))
    counts += [("safety", "hours_to_resolve", "n")] + _months(report, "safety", "flags_raised")
    stats += [(("safety", "hours_to_resolve", k), ("safety", "hours_to_resolve", "n")) for k in ("median", "p90")]
    sums.append((("safety", "flags_raised"), _months(report, "safety", "flags_raised")))
    for o in ("delivered", "failed", "unsubscribed"):
        per_channel = [("communication", "by_channel", ch, o) for ch in c["by_channel"]]
        counts += [("communication", o)] + per_channel + _months(report, "communication", o)
        sums.append((("communication", o), per_channel))
        sums.append((("communication", o), _months(report, "communication", o)))
    return counts, sums, stats


def suppress(report: dict, k: int) -> dict:
    """A copy of ``report`` safe to publish: small counts hidden, with complementary suppression."""
    import copy

    out = copy.deepcopy(report)
    for row in out["engagement"]["attendance_by_series"]:
        row["absent"] = row["recorded"] - row["present"]
    counts, sums, stats = cells_and_sums(out)
    value = {p: _get(out, p) for p in counts}
    hidden = {p for p in counts if isinstance(value[p], int) and 0 < value[p] < k}

    def hide_one(candidates: list[Path]) -> bool:
        shown = [p for p in candidates if p not in hidden]
        if not shown:
            return False
        nonzero = [p for p in shown if value[p]] or shown
        hidden.add(min(nonzero, key=lambda p: (value[p], p)))
        return True

    changed = True
    while changed:
        changed = False
        for total, parts in sums:
            if not parts:
                continue
            hidden_parts = [p for p in parts if p in hidden]
            if total not in hidden and len(hidden_parts) == 1:
                changed |= hide_one([p for p in parts if p not in hidden]) or hide_one([total])
            elif total in hidden and not hidden_parts and value[total]:
                changed |= hide_one(parts)
    label = SUPPRESSED.format(k=k)
    for path in hidden:
        _set(out, path, label)
    for stat, people in stats:
        behind = value.get(people, _get(out, people))
        if people in hidden or not isinstance(behind, int) or behind < k:
            if _get(out, stat) is not None:
                _set(out, stat, label)
    return out


def as_utc(value) -> datetime:
    """An event's date-time field (ISO text in event data) as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def attend(doc: dict, entry: dict) -> dict:
    """Presence at one occurrence; the latest record of that occurrence wins."""
    kept = [a for a in doc["attendance"] if a["id"] != entry["id"] or a["recorded_at"] > entry["recorded_at"]]
    if any(a["id"] == entry["id"] for a in kept):
        return {**doc, "attendance": kept}
    return {**doc, "attendance": sorted([*kept, entry], key=lambda a: (a["at"], a["id"]))}


def occurrence_start(occurrence_id: str) -> datetime | None:
    """The original start an occurrence id carries ("<meeting>:YYYYMMDDTHHMMSSZ"), or None."""
    try:
        return datetime.strptime(occurrence_id.rsplit(":", 1)[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except (IndexError, ValueError):
        return None
