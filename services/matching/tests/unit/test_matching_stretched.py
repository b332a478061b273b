"""A peer leader who says they are stretched gets no new proposals until it is lifted (issue 17): the hard
rule, its words, the waitlist's reason, and the optimal assignment (no I/O)."""
from datetime import datetime, timezone

from matching import model
from matching.model import Context, Leader, LeaderTable, Member, Window

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
EVENINGS = [Window(d, "18:00", "21:00") for d in range(5)]
WEIGHTS = model.normalise_weights(None)


def member(member_id="m1"):
    return Member(member_id=member_id, site_id="s1", languages=["en"], availability=EVENINGS, time_zone="UTC",
                  matching_consent=True)


def leader(leader_id, **kw):
    return Leader(**{"leader_id": leader_id, "site_ids": ["s1"], "languages": ["en"], "availability": EVENINGS,
                     "capacity": 3, "time_zone": "UTC", "certified": True, **kw})


def test_a_stretched_leader_is_not_feasible_and_the_reason_says_so_in_plain_words():
    table = LeaderTable([leader("calm"), leader("stretched", stretched=True)], NOW)
    ev = model.evaluate(member(), table, WEIGHTS, Context(now=NOW))
    assert list(ev.feasible) == [True, False]
    assert not ev.rules["not_stretched"][1] and ev.rules["leader_active"][1]
    assert model.rules_failed_in_words(ev, 1) == ["the leader said they are stretched (new proposals paused)"]
    assert "The leader is taking new members." in model.rules_in_words(ev, table, 0, Context(now=NOW))


def test_the_only_fitting_leader_stretched_leaves_the_member_waiting_with_that_reason():
    table = LeaderTable([leader("only", stretched=True)], NOW)
    ev = model.evaluate(member(), table, WEIGHTS, Context(now=NOW))
    text, codes = model.waitlist_reason(ev, table, Context(now=NOW))
    assert codes == ["leaders_stretched"]
    assert "said they are stretched" in text and "paused" in text
    # a rule that already leaves nobody is named first: the pause is only the reason when it is the reason
    far = LeaderTable([leader("only", stretched=True, languages=["fr"])], NOW)
    ev = model.evaluate(member(), far, WEIGHTS, Context(now=NOW))
    assert model.waitlist_reason(ev, far, Context(now=NOW))[1] == ["no_shared_language"]


def test_a_batch_assignment_gives_a_stretched_leader_nobody_and_lifting_it_restores_them():
    members = [member(f"m{i}") for i in range(3)]
    leaders = [leader("busy", stretched=True, capacity=5), leader("free", capacity=1)]
    table = LeaderTable(leaders, NOW)
    rows = []
    for m in members:
        ev = model.evaluate(m, table, WEIGHTS, Context(now=NOW))
        rows.append((ev.feasible.nonzero()[0], ev.base_score[ev.feasible]))
    result = model.assign(rows, None, table.open_count, table.capacity, WEIGHTS["leader_load"])
    assert sorted(result.pairs.values()) == [1]          # only the free leader's one place is used

    # the batch's re-check takes the pause from the fresher copy: lifted, the leader is feasible again
    table.refresh_load({"busy": leader("busy", capacity=5), "free": leader("free", capacity=1)})
    ev = model.evaluate(members[0], table, WEIGHTS, Context(now=NOW))
    assert ev.feasible[0]
