"""Scoring and assignment rules of matching (no I/O)."""
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from matching import model
from matching.model import Context, Leader, LeaderTable, Member, Window

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
EVENINGS = [Window(d, "18:00", "21:00") for d in range(5)]
WEIGHTS = model.normalise_weights(None)


def member(**kw):
    base = dict(member_id="m1", site_id="s1", languages=["en"], meeting_mode="either", availability=EVENINGS,
                time_zone="UTC", matching_consent=True, substances=["alcohol"], pathways=["12-step"],
                lived_experience_topics=["parenting"])
    base.update(kw)
    return Member(**base)


def leader(leader_id="l1", **kw):
    base = dict(leader_id=leader_id, site_ids=["s1"], languages=["en"], availability=EVENINGS, capacity=5,
                time_zone="UTC", certified=True, certified_until=None, meets_virtually=True, gender="female",
                substances=["alcohol"], pathways=["12-step"], lived_experience_areas=["parenting"])
    base.update(kw)
    return Leader(**base)


def evaluate(m, leaders, ctx=None):
    table = LeaderTable(leaders, NOW)
    return model.evaluate(m, table, WEIGHTS, ctx or Context(now=NOW)), table


def test_default_weights_add_up_to_100():
    assert sum(model.normalise_weights(None).values()) == pytest.approx(100)
    custom = model.normalise_weights({"availability": 60, "leader_load": 0})
    assert sum(custom.values()) == pytest.approx(100) and custom["leader_load"] == 0


@pytest.mark.parametrize("weights,field", [({"nonsense": 1}, "nonsense"), ({"availability": -1}, "availability")])
def test_bad_weights_are_refused_naming_the_part(weights, field):
    with pytest.raises(model.InvalidWeights) as exc:
        model.normalise_weights(weights)
    assert field in exc.value.errors


def test_a_good_pair_passes_every_rule_and_scores_high():
    ev, table = evaluate(member(), [leader()])
    assert ev.feasible[0]
    score, breakdown, rules = model.explain(ev, table, 0, WEIGHTS, Context(now=NOW))
    assert 90 <= score <= 100
    assert {b["part"] for b in breakdown} == set(model.PARTS)
    assert all(b["explanation"] for b in breakdown)
    assert any("share a language: English (en)" in r for r in rules)


@pytest.mark.parametrize("m_kw,l_kw,rule", [
    ({"matching_consent": False}, {}, "consent"),
    ({"matching_consent_expires_at": NOW - timedelta(days=1)}, {}, "consent"),
    ({"status": "paused"}, {}, "member_status"),
    ({}, {"status": "on_leave"}, "leader_active"),
    ({}, {"certified": False}, "certified"),
    ({}, {"certified_until": date(2026, 1, 1)}, "certified"),
    ({}, {"capacity": 2, "open_count": 2}, "capacity"),
    ({"languages": ["es"]}, {}, "language"),
    ({"leader_gender_preference": "male"}, {}, "gender"),
    ({"site_id": "s2", "meeting_mode": "in_person"}, {}, "location"),
    ({"site_id": "s2"}, {"meets_virtually": False}, "location"),
    ({"availability": [Window(5, "09:00", "10:00")]}, {}, "availability"),
])
def test_each_hard_rule_refuses_the_pair(m_kw, l_kw, rule):
    ev, _ = evaluate(member(**m_kw), [leader(**l_kw)])
    assert not ev.rules[rule][0]
    assert not ev.feasible[0]


def test_regional_language_variants_are_shared():
    ev, _ = evaluate(member(languages=["es-MX"]), [leader(languages=["es", "en"])])
    assert ev.rules["language"][0]


def test_availability_is_compared_in_utc_across_time_zones():
    # 18:00-20:00 in New York (UTC-5 in November) is 23:00-01:00 UTC; the leader in London (UTC+0).
    m = member(time_zone="America/New_York", availability=[Window(0, "18:00", "20:00")])
    overlapping = leader("l1", time_zone="Europe/London", availability=[Window(0, "23:00", "24:00")])
    next_day = leader("l2", time_zone="Europe/London", availability=[Window(1, "00:00", "00:30")])
    same_local = leader("l3", time_zone="Europe/London", availability=[Window(0, "18:00", "20:00")])
    ev, _ = evaluate(m, [overlapping, next_day, same_local])
    assert list(ev.overlap_hours) == [1.0, 0.5, 0.0]
    assert list(ev.rules["availability"]) == [True, True, False]


def test_a_site_that_meets_only_virtually_needs_a_virtual_leader():
    ctx = Context(now=NOW, virtual_only_sites=frozenset({"s1"}))
    ev, _ = evaluate(member(), [leader(meets_virtually=False)], ctx)
    assert not ev.rules["location"][0]


def test_blocked_or_declined_leaders_are_excluded():
    ctx = Context(now=NOW, excluded={"m1": frozenset({"l1"})})
    ev, _ = evaluate(member(), [leader("l1"), leader("l2")], ctx)
    assert list(ev.feasible) == [False, True]


def test_soft_score_prefers_shared_experience_and_less_busy_leaders():
    m = member(co_occurring_mental_health="yes")
    ev, _ = evaluate(m, [leader("same"), leader("different", substances=["opioids"], pathways=["smart"],
                                                           lived_experience_areas=[]),
                         leader("busy", open_count=4), leader("no_coo", co_occurring_mental_health_experience=False),
                         leader("with_coo", co_occurring_mental_health_experience=True)])
    same, different, busy, no_coo, with_coo = ev.score
    assert same > different and same > busy and with_coo > no_coo


def test_waitlist_reason_names_the_rule_that_left_nobody():
    ev, table = evaluate(member(languages=["es"]), [leader(languages=["en"]), leader("l2", languages=["fr"])])
    text, codes = model.waitlist_reason(ev, table, Context(now=NOW))
    assert codes == ["no_shared_language"]
    assert "speaks Spanish (es)" in text and text.startswith("No active, certified leader")
    ev, table = evaluate(member(), [leader(capacity=1, open_count=1)])
    assert model.waitlist_reason(ev, table, Context(now=NOW))[1] == ["no_capacity"]


def test_waitlist_reason_names_the_site_by_its_name_never_its_id():
    ev, table = evaluate(member(site_id="site_fd06", meeting_mode="in_person"), [leader(site_ids=["elsewhere"])])
    named = Context(now=NOW, site_names={"site_fd06": "Riverside"})
    text, codes = model.waitlist_reason(ev, table, named)
    assert codes == ["no_leader_at_site"] and "at site Riverside" in text and "site_fd06" not in text
    unnamed, _ = model.waitlist_reason(ev, table, Context(now=NOW))   # the name not known (yet)
    assert "at the member's site" in unnamed and "site_fd06" not in unnamed


# --- assignment ----------------------------------------------------------------------------------

def test_optimal_assignment_beats_greedy_on_a_case_built_to_fool_greedy():
    # Member 0 likes A a little more than B; member 1 can only use A. Greedy gives A to member 0.
    feasible = np.array([[True, True], [True, False]])
    score = np.array([[90.0, 85.0], [80.0, 0.0]])
    greedy = model.greedy_assign(feasible, score, [1, 1])
    optimal = model.assign(feasible, score, [0, 0], [1, 1], load_weight=0)
    assert greedy.pairs == {0: 0} and greedy.total_score == 90
    assert optimal.pairs == {0: 1, 1: 0}
    assert optimal.total_score == pytest.approx(165)
    assert optimal.total_score > greedy.total_score and len(optimal.pairs) > len(greedy.pairs)


def random_problem(seed, members=60, leaders=8):
    rng = np.random.default_rng(seed)
    feasible = rng.random((members, leaders)) < 0.4
    base = rng.random((members, leaders)) * 85
    capacity = rng.integers(1, 6, leaders)
    open_count = rng.integers(0, 2, leaders)
    return feasible, base, open_count, capacity


@pytest.mark.parametrize("seed", range(5))
def test_capacity_is_never_exceeded_and_infeasible_pairs_never_made(seed):
    feasible, base, open_count, capacity = random_problem(seed)
    result = model.assign(feasible, base, open_count, capacity, load_weight=15)
    counts = np.bincount(list(result.pairs.values()), minlength=len(capacity))
    assert (counts + open_count <= np.maximum(capacity, open_count)).all()
    assert all(feasible[m, l] for m, l in result.pairs.items())
    # Nobody who could be placed is left waiting while a feasible leader still has room.
    left = np.maximum(capacity - open_count, 0) - counts
    for m in range(len(feasible)):
        if m not in result.pairs:
            assert not (feasible[m] & (left > 0)).any()


def dense_optimum(feasible, base, open_count, capacity, load_weight):
    """The exact optimum by scipy's dense linear_sum_assignment: every free place of a leader a column
    (place k worth the pair's base plus the load part at open + k), infeasible pairs forbidden, a
    "stay waiting" column per member worth 0."""
    from scipy.optimize import linear_sum_assignment

    remaining = np.maximum(np.asarray(capacity) - np.asarray(open_count), 0)
    columns = [(l, k) for l in range(len(capacity)) for k in range(remaining[l])]
    dense = np.full((len(feasible), len(columns) + len(feasible)), -1e6)
    for j, (l, k) in enumerate(columns):
        load = load_weight * max(0.0, 1 - (open_count[l] + k) / max(capacity[l], 1))
        dense[feasible[:, l], j] = base[feasible[:, l], l] + load
    dense[np.arange(len(feasible)), len(columns) + np.arange(len(feasible))] = 0
    r, c = linear_sum_assignment(dense, maximize=True)
    return float(dense[r, c].sum())


def objective(pairs, base, open_count, capacity, load_weight):
    """Any assignment's total, recomputed place by place (the k-th member of a leader gets place k)."""
    total = sum(float(base[m, l]) for m, l in pairs.items())
    for l, n in enumerate(np.bincount(list(pairs.values()), minlength=len(capacity))):
        total += sum(load_weight * max(0.0, 1 - (open_count[l] + k) / max(capacity[l], 1)) for k in range(n))
    return total


# every size from one member to 600 x 40 (the dense reference grows as members x places)
SIZES = [(1, 1), (3, 2), (25, 5), (60, 8), (150, 12), (600, 40)]


@pytest.mark.parametrize("members,leaders", SIZES)
@pytest.mark.parametrize("seed", range(3))
def test_assignment_is_optimal_against_a_dense_solver(seed, members, leaders):
    feasible, base, open_count, capacity = random_problem(seed, members=members, leaders=leaders)
    ours = model.assign(feasible, base, open_count, capacity, load_weight=15)
    optimum = dense_optimum(feasible, base, open_count, capacity, 15)
    assert ours.total_score == pytest.approx(optimum, rel=0, abs=1e-6)
    assert objective(ours.pairs, base, open_count, capacity, 15) == pytest.approx(ours.total_score, rel=0, abs=1e-6)
    assert sum(ours.scores.values()) == pytest.approx(ours.total_score, rel=0, abs=1e-9)
    counts = np.bincount(list(ours.pairs.values()), minlength=leaders)
    assert (counts <= np.maximum(capacity - open_count, 0)).all()
    assert all(feasible[m, l] for m, l in ours.pairs.items())
    # the sparse form (what batch runs and the waitlist pass) gives the very same answer
    rows = [(np.flatnonzero(feasible[m]), base[m][feasible[m]]) for m in range(members)]
    sparse = model.assign(rows, None, open_count, capacity, load_weight=15)
    assert sparse.pairs == ours.pairs and sparse.total_score == ours.total_score


@pytest.mark.parametrize("seed", range(3))
def test_integer_scores_give_exactly_the_optimum(seed):
    # Whole-point scores and no load part: no rounding anywhere, so the totals are equal to the last bit.
    feasible, base, open_count, capacity = random_problem(seed, members=80, leaders=9)
    base = np.floor(base)
    ours = model.assign(feasible, base, open_count, capacity, load_weight=0)
    assert ours.total_score == dense_optimum(feasible, base, open_count, capacity, 0)


def test_a_millionth_of_a_point_decides():
    # Member 0 is worth a millionth of a point more with leader 1: the solver's integer costs must see it.
    feasible = np.ones((2, 2), dtype=bool)
    base = np.array([[50.0, 60.000001], [50.0, 60.0]])
    result = model.assign(feasible, base, [0, 0], [1, 1], load_weight=0)
    assert result.pairs == {0: 1, 1: 0}
    assert result.total_score == pytest.approx(110.000001, rel=0, abs=1e-9)


def test_trimmed_candidates_are_solved_exactly_too():
    feasible, base, open_count, capacity = random_problem(4, members=120, leaders=10)
    ours = model.assign(feasible, base, open_count, capacity, load_weight=15, candidates_per_member=2)
    # the reference keeps the same two best leaders of each member
    trimmed = np.zeros_like(feasible)
    for m in range(len(feasible)):
        options = np.flatnonzero(feasible[m])
        trimmed[m, options[np.argsort(-base[m][options], kind="stable")[:2]]] = True
    assert ours.total_score == pytest.approx(dense_optimum(trimmed, base, open_count, capacity, 15), rel=0, abs=1e-6)
    assert all(trimmed[m, l] for m, l in ours.pairs.items())


def test_ties_are_resolved_the_same_way_every_time():
    # Twenty identical members and four identical leaders: many optima; the same one each time.
    feasible = np.ones((20, 4), dtype=bool)
    base = np.full((20, 4), 40.0)
    first = model.assign(feasible, base, [0, 0, 0, 0], [5, 5, 5, 5], load_weight=15)
    assert all(model.assign(feasible, base, [0, 0, 0, 0], [5, 5, 5, 5], load_weight=15).pairs == first.pairs
               for _ in range(3))
    assert sorted(np.bincount(list(first.pairs.values()))) == [5, 5, 5, 5]


def test_nobody_to_assign():
    assert model.assign(np.zeros((0, 3), dtype=bool), np.zeros((0, 3)), [0] * 3, [2] * 3, 15).pairs == {}
    nobody_fits = model.assign(np.zeros((4, 3), dtype=bool), np.ones((4, 3)), [0] * 3, [2] * 3, 15)
    full = model.assign(np.ones((4, 3), dtype=bool), np.ones((4, 3)), [2, 3, 2], [2, 2, 2], 15)
    assert nobody_fits.pairs == {} == full.pairs and nobody_fits.total_score == 0 == full.total_score


def test_the_load_part_spreads_members_across_leaders():
    feasible = np.ones((4, 2), dtype=bool)
    base = np.full((4, 2), 50.0)
    result = model.assign(feasible, base, [0, 0], [4, 4], load_weight=15)
    assert sorted(np.bincount(list(result.pairs.values()))) == [2, 2]


def test_lifecycle_transitions():
    model.check_transition("proposed", "accept")
    with pytest.raises(model.TransitionError):
        model.check_transition("ended", "accept")
    with pytest.raises(model.TransitionError):
        model.check_transition("active", "decline")
    assert model.RE_PROPOSE_AFTER["leader_left"] and not model.RE_PROPOSE_AFTER["consent_revoked"]


def test_certification_and_consent_from_event_fields():
    assert model.certification_valid_until([]) == (False, None)
    assert model.certification_valid_until([{"expires_on": "2027-01-01"}, {"expires_on": "2026-01-01"}]) == \
        (True, date(2027, 1, 1))
    assert model.matching_consent([{"purpose": "notify:sms"}]) == (False, None)
    ok, until = model.matching_consent([{"purpose": "matching", "expires_at": "2027-01-01T00:00:00Z"}])
    assert ok and until.year == 2027


def test_waitlist_reason_describes_the_members_times_when_nobody_overlaps():
    m = member(availability=[Window(d, "06:00", "07:00") for d in range(5)] + [Window(6, "09:00", "10:00")],
               time_zone="America/Chicago")
    ev, table = evaluate(m, [leader()])
    text, codes = model.waitlist_reason(ev, table, Context(now=NOW))
    assert codes == ["no_availability_overlap"]
    assert "Mon-Fri 06:00-07:00; Sun 09:00-10:00 (America/Chicago)" in text


def test_availability_in_words():
    windows = [Window(0, "18:00", "20:00"), Window(2, "18:00", "20:00"), Window(3, "18:00", "20:00")]
    assert model.describe_availability(windows, "UTC") == "Mon, Wed, Thu 18:00-20:00 (UTC)"


def _reference_pair_ok(m, l, ctx):
    """The hard rules written out plainly, one pair at a time (independent of the vectorised code)."""
    from zoneinfo import ZoneInfo

    def utc_minutes(windows, tz):
        ref = model.week_start(ctx.now)
        out = set()
        for w in windows:
            h, mi = map(int, w.start.split(":"))
            eh, emi = map(int, w.end.split(":"))
            local = datetime.combine(ref.date() + timedelta(days=w.day), datetime.min.time(), tzinfo=ZoneInfo(tz))
            start = local + timedelta(hours=h, minutes=mi)
            length = (eh * 60 + emi) - (h * 60 + mi)
            first = int((start.astimezone(timezone.utc) - ref).total_seconds() // 60)
            out.update((first + k) % (7 * 24 * 60) for k in range(length))
        return out

    return all([
        m.matching_consent, l.status == "active", l.certified, l.open_count < l.capacity,
        bool({x.split("-")[0] for x in m.languages} & {x.split("-")[0] for x in l.languages}),
        not m.leader_gender_preference or m.leader_gender_preference == l.gender,
        (m.site_id in l.site_ids and m.meeting_mode != "virtual") or (m.meeting_mode != "in_person" and l.meets_virtually),
        bool(utc_minutes(m.availability, m.time_zone) & utc_minutes(l.availability, l.time_zone)),
    ])


@pytest.mark.parametrize("seed", range(3))
def test_hard_rules_are_never_broken_by_the_assignment(seed):
    import random

    rng = random.Random(seed)
    zones = ["America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Kolkata", "UTC"]

    def windows():
        return [Window(d, f"{h:02d}:00", f"{h + 2:02d}:00") for d in rng.sample(range(7), 2)
                for h in [rng.choice([6, 9, 12, 15, 18, 21])]]

    leaders = [leader(f"l{i}", site_ids=[rng.choice(["s1", "s2"])], languages=rng.choice([["en"], ["es"], ["en", "es-MX"]]),
                      gender=rng.choice(["female", "male"]), meets_virtually=rng.random() < 0.5,
                      time_zone=rng.choice(zones), availability=windows(), capacity=rng.randint(1, 4),
                      open_count=rng.randint(0, 1), status=rng.choice(["active"] * 5 + ["on_leave"]),
                      certified=rng.random() < 0.9) for i in range(15)]
    members = [member(member_id=f"m{i}", site_id=rng.choice(["s1", "s2"]), languages=rng.choice([["en"], ["es"]]),
                      leader_gender_preference=rng.choice([None, "female", "male"]),
                      meeting_mode=rng.choice(["in_person", "virtual", "either"]), time_zone=rng.choice(zones),
                      availability=windows(), matching_consent=rng.random() < 0.9) for i in range(60)]
    ctx = Context(now=NOW)
    table = LeaderTable(leaders, NOW)
    rows = []
    for m in members:
        ev = model.evaluate(m, table, WEIGHTS, ctx)
        for i, l in enumerate(leaders):
            assert bool(ev.feasible[i]) == _reference_pair_ok(m, l, ctx), (m.member_id, l.leader_id)
        rows.append((np.flatnonzero(ev.feasible), ev.base_score[ev.feasible]))
    result = model.assign(rows, None, table.open_count, table.capacity, WEIGHTS["leader_load"])
    assert result.pairs, "the random case should place somebody"
    for m_index, l_index in result.pairs.items():
        assert _reference_pair_ok(members[m_index], leaders[l_index], ctx)
    taken = np.bincount(list(result.pairs.values()), minlength=len(leaders))
    assert all(taken[i] + l.open_count <= max(l.capacity, l.open_count) for i, l in enumerate(leaders))


def test_summer_time_is_taken_from_the_current_week_on_each_side():
    # 10 March 2026: New York is on summer time (UTC-4) since 8 March, London not until 29 March (UTC+0).
    march = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)
    m = member(time_zone="America/New_York", availability=[Window(1, "18:00", "19:00")])
    l_ = leader(time_zone="Europe/London", availability=[Window(1, "22:00", "23:00")])
    ev = model.evaluate(m, LeaderTable([l_], march), WEIGHTS, Context(now=march))
    assert ev.overlap_hours[0] == 1.0
    # In November both are on standard time: 18:00 New York is 23:00 London, so no overlap.
    ev = model.evaluate(m, LeaderTable([l_], NOW), WEIGHTS, Context(now=NOW))
    assert ev.overlap_hours[0] == 0.0


def test_an_event_that_repeats_what_matching_holds_changes_nothing():
    """A registration's consents arrive again as consent changes right after it: no field changes, so
    matching neither saves the member again nor rechecks them (one registration cost three rechecks)."""
    until = datetime(2027, 1, 31, 12, 0, tzinfo=timezone.utc)
    stored = {"member_id": "m1", "status": "active", "matching_consent": True, "matching_consent_expires_at": until}
    consent, expires = model.matching_consent([{"purpose": "matching", "expires_at": "2027-01-31T12:00:00Z"}])
    assert model.changed_fields(stored, {"matching_consent": consent, "matching_consent_expires_at": expires}) == {}
    assert model.changed_fields(stored, {"status": "paused"}) == {"status": "paused"}
    withdrawn = model.matching_consent([])
    assert model.changed_fields(stored, {"matching_consent": withdrawn[0], "matching_consent_expires_at": withdrawn[1]}) \
        == {"matching_consent": False, "matching_consent_expires_at": None}
    assert model.changed_fields({}, {"status": "active"}) == {"status": "active"}   # a field never stored
