"""Incremental aggregates: what a member's facts add to the report, kept as counters that the event
handlers update, so a report reads O(sites x months) small documents instead of every member's facts.
Pure functions (no Flask, MongoDB or Kafka), unit-tested against ``model.outcomes`` (the reference that
computes every figure from the facts themselves).

How it stays exact. ``contribution(facts)`` is everything one member adds: a ``Counter`` of
``(site_id, month, key) -> n`` (``month`` None for the site's timeline). A handler computes the member's
contribution before and after the event and adds the difference (``difference``), so a transfer moves a
member's figures to their new site, a late or corrected event replaces what it changes, and a redelivered
event (dropped by the inbox, and a no-op on the facts anyway) changes nothing. The counters are thus always
the sum of the members' contributions: rebuild (replaying every event) gives the same counters, and so
the same figures, whatever the order.

Keys are ``metric|day|detail...`` with ``day`` a UTC day ``YYYYMMDD``; a report period is whole UTC days,
so "in the period" is "the day is in it". Distributions (days to a proposal, hours to resolve, recovery
changes) keep every value exactly, as a counter per value in microseconds (``tp|day|<us>``): a median is
the median of the same numbers the facts give. No key holds any id of a person; meeting ids (not people)
name a series.

*Members counted once* ("members with sessions", "members attending", "members flagged", "engaged in a
month", "discharged"): a member's times of that kind, sorted, add one ``metric|day`` per time and one
``metric~|day|next day`` per consecutive pair. Over any range of days, members with at least one time in
it = times in it - consecutive pairs with both days in it (the times in a range are consecutive).

*Time-dependent figures* (retention, members waiting and for how long, members active, flags open at the
end): they depend on when the report is asked for, not only on the events, so they cannot be a plain
counter that the events increment. Each is split into a part that only events change, kept here, and a
small as-of computation at report time:
  - retention: per member, the onboarding time (microseconds) and whether they were engaged at day 30,
    90 and 180 (a fact of their events: activity in the 30 days up to day N) as ``rt|day|<us>|<flags>``.
    Who is in the day-N cohort (onboarded in the range and day N come by the range's end or now) is decided
    when the report is asked for, from the onboarding times of the range's months.
  - active members, flags open: as-of intervals on the site's timeline. Being active (or having a flag
    open) at a day boundary T is a step function of T: +1 from the first boundary where it holds
    (``act+|day``), -1 from the first where it stops (``act-|day``); the count at T is the sum up to T
    (a few hundred keys a year per site, read from one document per site).
  - waiting: each spell on the waitlist is an interval of day boundaries with a constant "waiting since"
    (``wt|from|until|<since us>``), found by asking ``model.waiting_since`` itself at each boundary where
    its answer can change (after a waitlisting, a proposal, a status change). At report time: the spells
    that contain the range's end, and for how long each had waited then.
"""
from __future__ import annotations

import bisect
import gc
import statistics
from functools import lru_cache
from collections import Counter
from datetime import datetime, timedelta, timezone

from reporting import model

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)
OPEN = "-"  # an interval with no end yet


# --- keys ----------------------------------------------------------------------------------------------

def esc(text: str) -> str:
    """A value safe inside a key and a MongoDB field name (no '.', '|' or leading '$')."""
    return str(text).replace("%", "%25").replace(".", "%2E").replace("|", "%7C").replace("$", "%24")


def unesc(text: str) -> str:
    return text.replace("%24", "$").replace("%7C", "|").replace("%2E", ".").replace("%25", "%")


@lru_cache(maxsize=1 << 16)
def day(when: datetime) -> str:
    if when.utcoffset():
        when = when.astimezone(timezone.utc)
    return f"{when.year:04d}{when.month:02d}{when.day:02d}"


def family(key: str) -> str:
    """Which document of a site's month holds ``key``: the heaviest metrics (their consecutive-pair keys
    above all) each have their own, so an event rewrites a small document and a report reads a few."""
    metric = key.split("|", 1)[0].rstrip("~")
    if metric in ("eng", "ses", "msg"):
        return metric
    if metric in ("pres", "att") or metric.startswith("sm:"):
        return "att"
    return "base"


def month_of(day_key: str) -> str:
    return f"{day_key[:4]}-{day_key[4:6]}"


def midnight(when: datetime) -> datetime:
    when = when.astimezone(timezone.utc)
    return datetime(when.year, when.month, when.day, tzinfo=timezone.utc)


def after(when: datetime) -> datetime:
    """The first day boundary strictly after ``when`` (x < T for a boundary T  <=>  T >= after(x))."""
    return midnight(when) + DAY


def at_or_after(when: datetime) -> datetime:
    """The first day boundary at or after ``when`` (x <= T  <=>  T >= at_or_after(x))."""
    m = midnight(when)
    return m if m == when else m + DAY


def micros(delta: timedelta) -> int:
    return delta // US


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def as_stored(value):
    """``value`` with its times cut to milliseconds, as MongoDB keeps them: a member's contribution is
    computed from the facts exactly as they will be read back, so the next change subtracts what was added."""
    if isinstance(value, datetime):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if isinstance(value, dict):
        return {k: as_stored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_stored(v) for v in value]
    return value


# --- what one member adds ------------------------------------------------------------------------------

def contribution(doc: dict | None) -> Counter:
    """``(site_id, month or None, key) -> n``: everything this member's facts add to the aggregates."""
    out: Counter = Counter()
    if not doc:
        return out
    site = doc.get("site_id")

    def put(key_day: str, key: str, n: int = 1) -> None:
        out[(site, month_of(key_day), key)] += n

    def timeline(key: str, n: int = 1) -> None:
        out[(site, None, key)] += n

    def once(metric: str, times: list[datetime]) -> None:
        times = sorted(times)
        for t in times:
            put(day(t), f"{metric}|{day(t)}")
        for a, b in zip(times, times[1:]):
            put(day(a), f"{metric}~|{day(a)}|{day(b)}")

    for key, n in (doc.get("messages") or {}).items():  # "YYYYMMDD|channel|outcome": n (recipient's site now)
        put(key[:8], f"msg|{key}", n)
    onb = doc.get("onboarded_at")
    if onb is None:
        return out  # known only from a registration: nothing else counts before it
    od = day(onb)
    put(od, f"on|{od}")
    put(od, f"lang|{od}|{esc(doc.get('language') or 'not recorded')}")
    for p in doc.get("pathways") or ["not recorded"]:
        put(od, f"path|{od}|{esc(p)}")
    if doc["proposals"]:
        put(od, f"tp|{od}|{micros(doc['proposals'][0]['at'] - onb)}")
    if doc["accepted"]:
        put(od, f"ta|{od}|{micros(doc['accepted'][0]['at'] - onb)}")
    for d in doc["declines"]:
        put(day(d["at"]), f"dec|{day(d['at'])}|{esc(d['reason'])}")
    for target in ("discharged", "graduated"):
        once(f"st:{target}", [s["at"] for s in doc["statuses"] if s["status"] == target])

    sessions = [s["at"] for s in doc["sessions"]]
    once("ses", sessions)
    present = [a["at"] for a in doc["attendance"] if a["present"]]
    once("pres", present)
    by_series: dict[str, list[datetime]] = {}
    for a in doc["attendance"]:
        mid = esc(a["meeting_id"])
        put(day(a["at"]), f"att|{day(a['at'])}|{mid}|{int(bool(a['present']))}")
        by_series.setdefault(mid, []).append(a["at"])
    for mid, times in by_series.items():
        once(f"sm:{mid}", times)
    engaged = sorted(sessions + present)
    once("eng", engaged)

    def engaged_between(start: datetime, end: datetime) -> bool:
        i = bisect.bisect_left(engaged, start)
        return i < len(engaged) and engaged[i] < end
    flags = "".join("1" if engaged_between(onb + timedelta(days=n - model.ENGAGED_WINDOW_DAYS),
                                           onb + timedelta(days=n)) else "0" for n in model.RETENTION_DAYS)
    put(od, f"rt|{od}|{micros(onb - EPOCH)}|{flags}")

    for instrument, higher_better in model.HIGHER_IS_BETTER.items():
        taken = [s for s in doc["screenings"] if s["instrument"] == instrument]
        for j in range(1, len(taken)):
            change = taken[j]["total"] - taken[0]["total"]
            change = change if higher_better else -change
            nxt = day(taken[j + 1]["at"]) if j + 1 < len(taken) else OPEN
            d = day(taken[j]["at"])
            put(d, f"rc|{d}|{esc(instrument)}|{nxt}|{esc(repr(change))}")

    once("fl", [f["at"] for f in doc["flags"]])
    for raised, resolved in model.flag_episodes(doc):
        d = day(raised)
        if resolved is None:
            put(d, f"ep|{d}|{OPEN}|")
            timeline(f"op+|{day(after(raised))}")
        else:
            put(d, f"ep|{d}|{day(resolved)}|{micros(resolved - raised)}")
            timeline(f"op+|{day(after(raised))}")
            timeline(f"op-|{day(after(resolved))}")

    # active at a boundary T: onboarded before T and the latest status before T is "active"
    statuses = doc["statuses"]
    for i, entry in enumerate(statuses):
        if entry["status"] != "active":
            continue
        start = max(after(entry["at"]), after(onb))
        end = after(statuses[i + 1]["at"]) if i + 1 < len(statuses) else None
        if end is None or start < end:
            timeline(f"act+|{day(start)}")
            if end is not None:
                timeline(f"act-|{day(end)}")

    # waiting: model.waiting_since at every boundary where its answer can change
    marks = sorted({after(w["at"]) for w in doc["waitlisted"]} | {after(p["at"]) for p in doc["proposals"]}
                   | {at_or_after(s["at"]) for s in statuses})
    spells: list[list] = []
    for i, boundary in enumerate(marks):
        since = model.waiting_since(doc, boundary)
        until = marks[i + 1] if i + 1 < len(marks) else None
        if since is None:
            continue
        if spells and spells[-1][2] == since and spells[-1][1] == boundary:
            spells[-1][1] = until
        else:
            spells.append([boundary, until, since])
    for start, until, since in spells:
        timeline(f"wt|{day(start)}|{day(until) if until else OPEN}|{micros(since - EPOCH)}")
    return out


def difference(before: dict | None, after_: dict | None) -> Counter:
    """What to add to the aggregates when a member's facts go from ``before`` to ``after_`` (negatives kept)."""
    out = contribution(after_)
    out.subtract(contribution(before))
    return Counter({k: v for k, v in out.items() if v})


def message(site_id: str | None, at: datetime, channel: str, outcome: str) -> Counter:
    """A message not kept on a member's facts (to a leader or staff, or to an erased member): at ``site_id``."""
    return Counter({(site_id, month_of(day(at)), f"msg|{day(at)}|{esc(channel)}|{outcome}"): 1})


def message_key(at: datetime, channel: str, outcome: str) -> str:
    """The key of a member's ``messages`` counter (their facts) for one message."""
    return f"{day(at)}|{esc(channel)}|{outcome}"


# --- month-level totals --------------------------------------------------------------------------------
# Beside each site's month of day-level counters, the same counters with their first day (the one that puts
# the key in that month) rolled to the month's first day ("YYYYMM01"); every other field (a pair's second
# day, a flag's resolution day, the next screening's day, values in microseconds) stays exact. A report
# reads these for the months wholly inside its range and day-level ones only for a partial first or last
# month: for a whole month in [lo, hi), "lo <= day < hi" holds for its every day and for its first day
# alike, so ``figures`` gives the same numbers from either (medians and p90 too: the values are kept).

def rolled(key: str) -> str:
    """``key`` with its day (right after the metric) replaced by the first day of its month."""
    metric, _, rest = key.partition("|")
    return f"{metric}|{rest[:6]}01{rest[8:]}"


def month_totals(diff: Counter) -> Counter:
    """The month-level difference of a day-level one (timeline entries, month None, are left out)."""
    out: Counter = Counter()
    for (site, month, key), n in diff.items():
        if month is not None and n:
            out[(site, month, rolled(key))] += n
    return Counter({k: v for k, v in out.items() if v})


def split_months(period: "model.Period") -> tuple[list[str], list[str]]:
    """(months wholly inside ``period``, months it covers only in part), as "YYYY-MM"."""
    whole, part = [], []
    for p in period.months():  # each clipped to the period: whole when it runs from a 1st to the next 1st
        full = p.start.day == 1 and p.end == (p.start + timedelta(days=32)).replace(day=1)
        (whole if full else part).append(p.label)
    return whole, part


def months_between(first: datetime, end: datetime) -> list[str]:
    """The months ("YYYY-MM") a period from ``first`` up to ``end`` (exclusive) touches."""
    out, cursor = [], first.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while cursor < end:
        out.append(cursor.strftime("%Y-%m"))
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    return out


# --- the figures from the aggregates ------------------------------------------------------------------

def nest(flat: dict[str, int]) -> dict[str, dict[str, int]]:
    """``{key: n}`` as stored: ``{metric: {rest of the key: n}}`` (a report then reads each metric's counters
    of each document as they are, with no merging)."""
    out: dict[str, dict[str, int]] = {}
    for key, n in flat.items():
        metric, _, rest = key.partition("|")
        out.setdefault(metric, {})[rest] = n
    return out


class _Counts:
    """The counters of the documents read, by metric: for each metric the documents' own dicts (sites and
    months are not merged: every figure is a sum over them); parsed only as far as a figure needs (the day is
    the first 8 characters after the metric, a pair's second day the next 8)."""

    def __init__(self, docs: list[dict]):
        raw: dict[str, list[dict[str, int]]] = {}
        for d in docs:
            for metric, counts in (d.get("c") or {}).items():
                raw.setdefault(metric, []).append(counts)
        self.raw = raw
        self._rows: dict[str, list] = {}
        self._days: dict[str, dict[str, int]] = {}
        self._pairs: dict[str, list] = {}

    def items(self, metric: str):
        for counts in self.raw.get(metric, ()):
            yield from counts.items()

    def rows(self, metric: str) -> list[tuple[list[str], int]]:
        if metric not in self._rows:
            self._rows[metric] = [(rest.split("|"), n) for rest, n in self.items(metric) if n]
        return self._rows[metric]

    def sum(self, metric: str, lo: str, hi: str) -> int:
        if metric not in self._days:
            days: dict[str, int] = {}
            for rest, n in self.items(metric):
                days[rest[:8]] = days.get(rest[:8], 0) + n
            self._days[metric] = days
        return sum(n for d, n in self._days[metric].items() if lo <= d < hi)

    def once(self, metric: str, lo: str, hi: str) -> int:
        """Members with at least one time of ``metric`` in [lo, hi)."""
        if metric not in self._pairs:  # the same pair of days at several sites counted once, summed
            merged: dict[tuple[str, str], int] = {}
            for rest, n in self.items(metric + "~"):
                pair = (rest[:8], rest[9:17])
                merged[pair] = merged.get(pair, 0) + n
            self._pairs[metric] = [(d1, d2, n) for (d1, d2), n in merged.items() if n]
        pairs = sum(n for d1, d2, n in self._pairs[metric] if lo <= d1 and d2 < hi)
        return self.sum(metric, lo, hi) - pairs


def _as_of(timeline: list[tuple[list[str], int]], minus: list[tuple[list[str], int]], when: str) -> int:
    return (sum(n for parts, n in timeline if parts[0] <= when) - sum(n for parts, n in minus if parts[0] <= when))


def _number(text: str):
    text = unesc(text)
    try:
        return int(text)
    except ValueError:
        return float(text)


def figures(monthly: list[dict], timelines: list[dict], leaders: list[dict], series_names: dict[str, str],
            period: model.Period, now: datetime) -> dict:
    """Every figure, before suppression: the same as ``model.outcomes`` over the members' facts, from the
    aggregates of the period's months and the sites' timelines. The cyclic garbage collector is paused
    meanwhile: the counters make tens of thousands of small objects and no cycle, and its passes over the
    whole heap were most of the time spent here (profiled)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _figures(monthly, timelines, leaders, series_names, period, now)
    finally:
        if enabled:
            gc.enable()


def _figures(monthly: list[dict], timelines: list[dict], leaders: list[dict], series_names: dict[str, str],
             period: model.Period, now: datetime) -> dict:
    c, t = _Counts(monthly), _Counts(timelines)
    lo, hi = day(period.start), day(period.end)
    months = [(p, day(p.start), day(p.end)) for p in period.months()]

    # reach
    def active_at(when: datetime) -> int:
        return _as_of(t.rows("act+"), t.rows("act-"), day(when))

    def leaders_at(when: datetime) -> int:
        return sum(1 for lead in leaders
                   if model.status_at(lead["statuses"], when - timedelta(microseconds=1)) == "active")

    by_language: Counter = Counter()
    for (d, lang), n in c.rows("lang"):
        if lo <= d < hi:
            by_language[unesc(lang)] += n
    by_pathway: Counter = Counter()
    for (d, p), n in c.rows("path"):
        if lo <= d < hi:
            by_pathway[unesc(p)] += n
    reach = {"onboarded": c.sum("on", lo, hi), "active_at_end": active_at(period.end),
             "discharged": c.once("st:discharged", lo, hi), "graduated": c.once("st:graduated", lo, hi),
             "leaders_active_at_end": leaders_at(period.end),
             "by_language": dict(sorted(by_language.items())), "by_pathway": dict(sorted(by_pathway.items())),
             "monthly": [{"month": p.label, "onboarded": c.sum("on", a, b), "active": active_at(p.end),
                          "discharged": c.once("st:discharged", a, b), "graduated": c.once("st:graduated", a, b),
                          "leaders_active": leaders_at(p.end)} for p, a, b in months]}

    # access
    def values(metric: str, scale: int) -> list[float]:
        out: list[float] = []
        for (d, us), n in c.rows(metric):
            if lo <= d < hi:
                out += [int(us) / 10**6 / scale] * n
        return out
    waiting = []
    for (start, until, since), n in t.rows("wt"):
        if start <= hi and (until == OPEN or hi < until):
            waiting += [model.days(from_micros(int(since)), period.end)] * n
    declines: Counter = Counter()
    for (d, reason), n in c.rows("dec"):
        if lo <= d < hi:
            declines[unesc(reason)] += n
    access = {"days_to_first_proposal": model.spread(values("tp", 86400)),
              "days_to_accepted_match": model.spread(values("ta", 86400)),
              "waiting_at_end": {"members": len(waiting),
                                 **{k: v for k, v in model.spread(waiting).items() if k != "n"}},
              "declined": sum(declines.values()), "declined_by_reason": dict(sorted(declines.items()))}

    # engagement
    sessions, with_sessions = c.sum("ses", lo, hi), c.once("ses", lo, hi)
    series: dict[str, dict] = {}
    for (d, mid, present), n in c.rows("att"):
        if lo <= d < hi:
            row = series.setdefault(mid, {"present": 0, "recorded": 0})
            row["recorded"] += n
            row["present"] += n * int(present)
    by_series = []
    for mid, row in sorted(series.items(), key=lambda kv: series_names.get(unesc(kv[0]), unesc(kv[0]))):
        by_series.append({"meeting": series_names.get(unesc(mid), "a meeting"),
                          "members": c.once(f"sm:{mid}", lo, hi), "present": row["present"],
                          "recorded": row["recorded"], "attendance_rate": round(row["present"] / row["recorded"], 3)})
    as_of = min(period.end, now)
    retention = {}
    onboarded = [(int(onb_us), flags, n) for (d, onb_us, flags), n in c.rows("rt") if lo <= d < hi]
    for i, n_days in enumerate(model.RETENTION_DAYS):
        cohort = engaged = 0
        latest = micros(as_of - timedelta(days=n_days) - EPOCH)  # day N come by as_of: onboarded at or before
        for onb_us, flags, n in onboarded:
            if onb_us <= latest:
                cohort += n
                engaged += n * (flags[i] == "1")
        retention[f"day_{n_days}"] = {"cohort": cohort, "engaged": engaged, "not_engaged": cohort - engaged,
                                      "share": round(engaged / cohort, 3) if cohort else None}
    engagement = {"sessions_held": sessions, "members_with_sessions": with_sessions,
                  "sessions_per_member": round(sessions / with_sessions, 2) if with_sessions else None,
                  "meeting_attendances": c.sum("pres", lo, hi), "members_attending": c.once("pres", lo, hi),
                  "attendance_by_series": by_series, "retention": retention,
                  "monthly": [{"month": p.label, "sessions_held": c.sum("ses", a, b),
                               "meeting_attendances": c.sum("pres", a, b), "members_engaged": c.once("eng", a, b)}
                              for p, a, b in months]}

    # recovery capital: the latest screening before the end is in the range (the next one, if any, is not)
    changes: dict[str, list] = {inst: [] for inst in model.HIGHER_IS_BETTER}
    for (d, inst, nxt, change), n in c.rows("rc"):
        if lo <= d < hi and (nxt == OPEN or nxt >= hi) and unesc(inst) in changes:
            changes[unesc(inst)] += [_number(change)] * n
    recovery = {}
    for inst, higher_better in model.HIGHER_IS_BETTER.items():
        ch = changes[inst]
        recovery[inst] = {"higher_is_better": higher_better, "members": len(ch),
                          "mean_change": round(statistics.fmean(ch), 2) if ch else None,
                          "improved": sum(1 for x in ch if x > 0), "unchanged": sum(1 for x in ch if x == 0),
                          "worse": sum(1 for x in ch if x < 0)}

    # safety
    hours: list[float] = []
    for (d, resolved, us), n in c.rows("ep"):
        if lo <= d < hi and resolved != OPEN and resolved < hi:
            hours += [int(us) / 10**6 / 3600] * n
    safety = {"flags_raised": c.sum("fl", lo, hi), "members_flagged": c.once("fl", lo, hi), "resolved": len(hours),
              "hours_to_resolve": model.spread(hours),
              "members_open_at_end": _as_of(t.rows("op+"), t.rows("op-"), hi),
              "monthly": [{"month": p.label, "flags_raised": c.sum("fl", a, b)} for p, a, b in months]}

    # communication
    outcomes_ = ("delivered", "failed", "unsubscribed")
    by_channel: dict[str, dict[str, int]] = {}
    per_month: dict[str, dict[str, int]] = {}
    for (d, channel, outcome), n in c.rows("msg"):
        if lo <= d < hi and outcome in outcomes_:
            by_channel.setdefault(unesc(channel), dict.fromkeys(outcomes_, 0))[outcome] += n
            per_month.setdefault(month_of(d), dict.fromkeys(outcomes_, 0))[outcome] += n
    by_channel = dict(sorted(by_channel.items()))
    communication = {**{o: sum(row[o] for row in by_channel.values()) for o in outcomes_}, "by_channel": by_channel,
                     "monthly": [{"month": p.label, **per_month.get(p.label, dict.fromkeys(outcomes_, 0))}
                                 for p, _a, _b in months]}
    return {"reach": reach, "access": access, "engagement": engagement, "recovery_capital": recovery,
            "safety": safety, "communication": communication}
