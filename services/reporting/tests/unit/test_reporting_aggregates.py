"""The aggregates give every figure exactly as the reference (``model.outcomes`` over every member's facts),
for random members and random periods (whole days, month ends, a period reaching past now), whatever the order
the events came in; transfers move a member's figures; no key names a person."""
import random
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from reporting import aggregates, model

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
SITES = ["s1", "s2", "s3"]


def _events(rng: random.Random, i: int) -> list[tuple]:
    """One member's year as (time, change(doc) -> doc) pairs."""
    t = lambda days: START + timedelta(days=days, seconds=rng.randrange(0, 86400), microseconds=rng.randrange(0, 10**6))  # noqa: E731
    onb = rng.uniform(0, 300)
    site = rng.choice(SITES)
    profile = {"site_id": site, "status": "active", "languages": [rng.choice(["en", "es", "pt.br"])],
               "pathways": rng.sample(["smart", "12-step"], rng.randrange(0, 3))}
    out = [(t(onb), lambda d, at: model.registered(d, profile, at))]
    cursor = onb
    if rng.random() < 0.4:
        for _ in range(rng.randrange(1, 3)):
            w = cursor + rng.uniform(0, 20)
            out.append((t(w), lambda d, at: model.add(d, "waitlisted", {"at": at}, "at")))
            cursor = w
    for k in range(rng.randrange(0, 3)):
        cursor += rng.uniform(0, 30)
        mid = f"m{i}-{k}"
        out.append((t(cursor), lambda d, at, mid=mid: model.add(d, "proposals", {"id": mid, "at": at}, "id")))
        if rng.random() < 0.3:
            reason = rng.choice(["schedule", "language"])
            out.append((t(cursor + 1), lambda d, at, mid=mid, reason=reason: model.add(
                d, "declines", {"id": mid, "at": at, "reason": reason}, "id")))
        else:
            out.append((t(cursor + 1), lambda d, at, mid=mid: model.add(d, "accepted", {"id": mid, "at": at}, "id")))
    for k in range(rng.randrange(0, 12)):
        s = onb + rng.uniform(0, 200)
        out.append((t(s), lambda d, at, k=k: model.add(d, "sessions", {"id": f"se{i}-{k}", "at": at}, "id")))
    for k in range(rng.randrange(0, 10)):
        a = onb + rng.uniform(0, 200)
        occ = f"o{rng.randrange(0, 40)}"
        present, meeting = rng.random() < 0.7, rng.choice(["mtg.1", "mtg-2"])
        out.append((t(a), lambda d, at, occ=occ, present=present, meeting=meeting: model.attend(
            d, {"id": occ, "meeting_id": meeting, "at": START + timedelta(days=int(occ[1:]) * 7),
                "present": present, "recorded_at": at})))
    for k in range(rng.randrange(0, 4)):
        inst, total = rng.choice(["BARC-10", "PHQ-2"]), rng.randrange(0, 40)
        out.append((t(onb + rng.uniform(0, 300)), lambda d, at, k=k, inst=inst, total=total: model.add(
            d, "screenings", {"id": f"sc{i}-{k}", "at": at, "instrument": inst, "total": total}, "id")))
    for k in range(rng.randrange(0, 3)):
        f = onb + rng.uniform(0, 200)
        out.append((t(f), lambda d, at, k=k: model.add(d, "flags", {"id": f"f{i}-{k}", "at": at}, "id")))
        if rng.random() < 0.7:
            out.append((t(f + rng.uniform(0, 3)), lambda d, at: model.add(d, "resolved", {"at": at}, "at")))
    for k in range(rng.randrange(0, 3)):
        to = rng.choice(["discharged", "graduated", "active", "paused"])
        out.append((t(onb + rng.uniform(0, 300)), lambda d, at, to=to: model.status(d, to, at)))
    if rng.random() < 0.2:
        to_site = rng.choice(SITES)
        out.append((t(onb + rng.uniform(0, 200)), lambda d, at: model.place(d, to_site, at)))
    for k in range(rng.randrange(0, 6)):
        ch, oc = rng.choice(["email", "sms"]), rng.choice(["delivered", "failed", "unsubscribed"])
        out.append((t(onb + rng.uniform(-5, 200)), lambda d, at, ch=ch, oc=oc: {
            **d, "messages": Counter(d.get("messages") or {}) + Counter({aggregates.message_key(at, ch, oc): 1})}))
    return out


def _world(seed: int, n: int = 120, order: int = 0):
    rng, shuffle = random.Random(seed), random.Random(order)
    members, store = [], Counter()
    for i in range(n):
        events = _events(rng, i)
        shuffle.shuffle(events)  # any order
        doc = None
        for at, change in events:
            new = aggregates.as_stored(change(doc or model.new_member("org"), at))
            store.update(aggregates.difference(doc, new))
            doc = new
        members.append(doc)
    return members, store


def _docs(store: Counter, sites=None):
    monthly, timelines = {}, {}
    for (site, month, key), n in store.items():
        if sites is not None and site not in sites:
            continue
        target = timelines if month is None else monthly
        target.setdefault((site, month), {"month": month, "c": {}})["c"][key] = n
    nested = lambda docs: [{**d, "c": aggregates.nest(d["c"])} for d in docs.values()]  # noqa: E731
    return nested(monthly), nested(timelines)


def _messages(members, sites=None):
    out = []
    for m in members:
        for key, n in (m.get("messages") or {}).items():
            d, channel, outcome = key.split("|")
            at = datetime.strptime(d, "%Y%m%d").replace(tzinfo=timezone.utc)
            out += [{"at": at, "channel": channel, "outcome": outcome}] * n
    return out


PERIODS = [(date(2025, 1, 1), date(2025, 12, 31)), (date(2025, 3, 15), date(2025, 8, 2)),
           (date(2025, 6, 1), date(2025, 6, 30)), (date(2025, 10, 1), date(2026, 3, 31))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_aggregates_give_every_figure_as_the_facts_do(seed):
    members, store = _world(seed)
    leaders = [model.status({"statuses": []}, "active", START)]
    names = {"mtg.1": "Circle"}
    now = datetime(2026, 1, 10, 13, 5, tzinfo=timezone.utc)
    for sites in (None, {"s1"}, {"s2", "s3"}):
        mine = [m for m in members if sites is None or m["site_id"] in sites]
        monthly, timelines = _docs(store, sites)
        for first, last in PERIODS:
            period = model.Period.of(first, last)
            months = set(aggregates.months_between(period.start, period.end))
            expected = model.outcomes(mine, leaders, _messages(mine), names, period, now)
            got = aggregates.figures([d for d in monthly if d["month"] in months], timelines, leaders, names, period,
                                     now)
            for section in expected:
                assert got[section] == expected[section], (sites, first, last, section)


@pytest.mark.parametrize("seed", [1, 2])
def test_month_level_totals_for_whole_months_give_every_figure_as_the_facts_do(seed):
    """A report reads the month-level totals of the months wholly in its range and day-level counters only
    for a partial first or last month: the same figures as the facts (medians and p90 included)."""
    members, store = _world(seed)
    months_store = aggregates.month_totals(store)
    assert len(+months_store) < len(+Counter({k: v for k, v in store.items() if k[1] is not None}))
    leaders = [model.status({"statuses": []}, "active", START)]
    names = {"mtg.1": "Circle"}
    now = datetime(2026, 1, 10, 13, 5, tzinfo=timezone.utc)
    for sites in (None, {"s2", "s3"}):
        mine = [m for m in members if sites is None or m["site_id"] in sites]
        daily, timelines = _docs(store, sites)
        monthly, _ = _docs(months_store, sites)
        for first, last in PERIODS + [(date(2025, 2, 1), date(2025, 2, 28)), (date(2025, 2, 2), date(2025, 2, 27))]:
            period = model.Period.of(first, last)
            whole, part = aggregates.split_months(period)
            assert sorted(whole + part) == aggregates.months_between(period.start, period.end)
            expected = model.outcomes(mine, leaders, _messages(mine), names, period, now)
            got = aggregates.figures([d for d in monthly if d["month"] in whole]
                                     + [d for d in daily if d["month"] in part], timelines, leaders, names, period, now)
            for section in expected:
                assert got[section] == expected[section], (sites, first, last, section)
    assert aggregates.split_months(model.Period.of(date(2025, 3, 15), date(2025, 8, 2))) == (
        ["2025-04", "2025-05", "2025-06", "2025-07"], ["2025-03", "2025-08"])
    assert aggregates.split_months(model.Period.of(date(2025, 1, 1), date(2025, 12, 31)))[1] == []


def test_the_same_members_applied_in_another_order_give_the_same_counters():
    _, a = _world(7, 40, order=1)
    _, b = _world(7, 40, order=2)
    assert +a == +b and len(+a) > 1000


def test_a_transfer_moves_the_member_figures_to_the_new_site():
    doc = model.registered(model.new_member("org"), {"site_id": "s1", "status": "active", "languages": ["en"]},
                           START)
    moved = model.place(doc, "s2", START + timedelta(days=40))
    diff = aggregates.difference(doc, moved)
    assert diff[("s1", "2025-01", "on|20250101")] == -1 and diff[("s2", "2025-01", "on|20250101")] == 1
    assert sum(n for (site, _, _), n in diff.items() if site == "s1") == -len(aggregates.contribution(doc))


def test_no_key_names_a_person():
    members, store = _world(11, 30)
    text = repr(store)
    assert "m1-0" not in text and "se1-" not in text and "sc1-" not in text and "f1-" not in text
