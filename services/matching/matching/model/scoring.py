"""Hard rules and the 0-100 soft score of one member against many leaders at once (vectorised over
leaders with numpy), and the weights of the score's parts."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

import numpy as np

from matching.model.availability import SLOT_MINUTES, SLOTS_PER_WEEK, availability_slots
from matching.model.lifecycle import ELIGIBLE_MEMBER_STATUSES
from matching.model.people import Context, Leader, Member, _language_base, _norm

PARTS = ("substances_pathway", "lived_experience", "availability", "co_occurring", "leader_load")
DEFAULT_WEIGHTS = {"substances_pathway": 30.0, "lived_experience": 20.0, "availability": 20.0,
                   "co_occurring": 15.0, "leader_load": 15.0}
PART_TITLES = {
    "substances_pathway": "Shared substances and recovery pathway",
    "lived_experience": "Shared lived-experience topics",
    "availability": "Weekly time in common",
    "co_occurring": "Co-occurring mental health experience",
    "leader_load": "Leader's current load",
}
TARGET_OVERLAP_HOURS = 4.0       # this many common hours a week earn the full availability points


class InvalidWeights(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def normalise_weights(weights: dict[str, float] | None) -> dict[str, float]:
    """Weights as points out of 100 (they may be given in any scale; the ratios are what count)."""
    merged = dict(DEFAULT_WEIGHTS)
    merged.update(weights or {})
    errors = {k: ["unknown score part"] for k in merged if k not in PARTS}
    errors.update({k: ["must be zero or more"] for k, v in merged.items() if k in PARTS and v < 0})
    if errors:
        raise InvalidWeights(errors)
    total = sum(merged[p] for p in PARTS)
    if total <= 0:
        raise InvalidWeights({"weights": ["at least one weight must be above zero"]})
    return {p: 100.0 * merged[p] / total for p in PARTS}


@dataclass
class LeaderTable:
    """The leaders of an organization as arrays (built once per proposal or batch run)."""

    leaders: list[Leader]
    now: datetime
    active: np.ndarray = None
    certified: np.ndarray = None
    taking_new: np.ndarray = None              # not stretched (the leader did not pause new proposals)
    remaining: np.ndarray = None
    virtual: np.ndarray = None
    availability: np.ndarray = None            # L x SLOTS (float32, for matrix products)
    co_occurring: np.ndarray = None
    index: dict[str, int] = None

    def __post_init__(self):
        leaders, today = self.leaders, self.now.date()
        self.index = {l.leader_id: i for i, l in enumerate(leaders)}
        self.active = np.array([l.status == "active" for l in leaders], dtype=bool)
        self.taking_new = np.array([not l.stretched for l in leaders], dtype=bool)
        self.certified = np.array([l.certified and (l.certified_until is None or l.certified_until >= today)
                                   for l in leaders], dtype=bool)
        self.remaining = np.array([max(0, l.capacity - l.open_count) for l in leaders], dtype=np.int64)
        self.capacity = np.array([l.capacity for l in leaders], dtype=np.int64)
        self.open_count = np.array([l.open_count for l in leaders], dtype=np.int64)
        self.virtual = np.array([bool(l.meets_virtually) for l in leaders], dtype=bool)
        self.co_occurring = np.array([bool(l.co_occurring_mental_health_experience) for l in leaders], dtype=bool)
        self.gender = np.array([(l.gender or "").lower() for l in leaders], dtype=object)
        if leaders:
            self.availability = np.vstack([availability_slots(l.availability, l.time_zone, self.now)
                                           for l in leaders]).astype(np.float32)
        else:
            self.availability = np.zeros((0, SLOTS_PER_WEEK), dtype=np.float32)
        self._sets: dict[str, dict[str, np.ndarray]] = {}

    def refresh_load(self, current: dict[str, "Leader"]) -> None:
        """Take status, certification, capacity and load from fresher copies of the same leaders
        (a batch run re-checks these before each write; profiles and availability are kept)."""
        today = self.now.date()
        for i, leader in enumerate(self.leaders):
            fresh = current.get(leader.leader_id)
            if fresh is None:
                leader.status = "gone"
                continue
            leader.status, leader.capacity, leader.open_count = fresh.status, fresh.capacity, fresh.open_count
            leader.certified, leader.certified_until = fresh.certified, fresh.certified_until
            leader.stretched = fresh.stretched
        self.active = np.array([l.status == "active" for l in self.leaders], dtype=bool)
        self.taking_new = np.array([not l.stretched for l in self.leaders], dtype=bool)
        self.certified = np.array([l.certified and (l.certified_until is None or l.certified_until >= today)
                                   for l in self.leaders], dtype=bool)
        self.capacity = np.array([l.capacity for l in self.leaders], dtype=np.int64)
        self.open_count = np.array([l.open_count for l in self.leaders], dtype=np.int64)
        self.remaining = np.maximum(self.capacity - self.open_count, 0)

    def _having(self, attribute: str, value: str) -> np.ndarray:
        """Bool array: which leaders have ``value`` in their list ``attribute`` (cached per value)."""
        cache = self._sets.setdefault(attribute, {})
        if value not in cache:
            cache[value] = np.array([value in _norm(getattr(l, attribute)) for l in self.leaders], dtype=bool)
        return cache[value]

    def speaks(self, language: str) -> np.ndarray:
        cache = self._sets.setdefault("languages", {})
        if language not in cache:
            cache[language] = np.array([language in {_language_base(c) for c in _norm(l.languages)}
                                        for l in self.leaders], dtype=bool)
        return cache[language]

    def count_shared(self, attribute: str, values: Iterable[str]) -> np.ndarray:
        counts = np.zeros(len(self.leaders), dtype=np.int64)
        for value in _norm(values):
            counts += self._having(attribute, value)
        return counts


RULES = ("consent", "member_status", "leader_active", "not_stretched", "certified", "capacity", "location",
         "language", "gender", "availability", "not_excluded")


@dataclass
class Evaluation:
    """One member against every leader of a table: rule masks, part fractions (0..1) and scores."""

    member: Member
    rules: dict[str, np.ndarray]               # rule -> bool per leader
    fractions: dict[str, np.ndarray]           # part -> 0..1 per leader
    overlap_hours: np.ndarray
    feasible: np.ndarray
    base_score: np.ndarray                     # every part but leader load, in points
    score: np.ndarray                          # 0..100 including the current leader load


def member_consent_ok(member: Member, now: datetime) -> bool:
    return bool(member.matching_consent) and (member.matching_consent_expires_at is None
                                              or member.matching_consent_expires_at > now)


def evaluate(member: Member, table: LeaderTable, weights: dict[str, float], ctx: Context) -> Evaluation:
    """Hard rules and soft score of ``member`` against every leader in ``table``.

    ``weights`` are already normalised (points out of 100)."""
    n = len(table.leaders)
    ones = np.ones(n, dtype=bool)
    rules: dict[str, np.ndarray] = {}
    rules["consent"] = ones & member_consent_ok(member, ctx.now)
    rules["member_status"] = ones & (member.status in ELIGIBLE_MEMBER_STATUSES)
    rules["leader_active"] = table.active
    # A leader who said they are stretched gets nobody new until it is lifted (their matches go on).
    rules["not_stretched"] = table.taking_new
    rules["certified"] = table.certified
    rules["capacity"] = table.remaining > 0
    # Location: the same site (in person, unless the site meets only virtually), or both open to virtual.
    same_site = table._having("site_ids", member.site_id.lower())
    member_virtual = member.meeting_mode in ("virtual", "either")
    member_in_person = member.meeting_mode in ("in_person", "either") and member.site_id not in ctx.virtual_only_sites
    rules["location"] = (same_site & member_in_person) | (table.virtual & member_virtual)
    spoken = np.zeros(n, dtype=bool)
    for language in {_language_base(c) for c in _norm(member.languages)}:
        spoken |= table.speaks(language)
    rules["language"] = spoken
    pref = (member.leader_gender_preference or "").strip().lower()
    rules["gender"] = ones if pref in ("", "none", "no_preference", "any") else (table.gender == pref)
    member_slots = availability_slots(member.availability, member.time_zone, ctx.now).astype(np.float32)
    overlap_hours = (table.availability @ member_slots) * SLOT_MINUTES / 60.0 if n else np.zeros(0)
    rules["availability"] = overlap_hours > 0
    excluded = ctx.excluded.get(member.member_id, frozenset())
    not_excluded = ones.copy()
    for leader_id in excluded:
        if leader_id in table.index:
            not_excluded[table.index[leader_id]] = False
    rules["not_excluded"] = not_excluded
    feasible = ones.copy()
    for mask in rules.values():
        feasible &= mask

    fractions: dict[str, np.ndarray] = {}
    substances, pathways = _norm(member.substances), _norm(member.pathways)
    if substances or pathways:
        sub = table.count_shared("substances", substances) / len(substances) if substances else np.zeros(n)
        path = (table.count_shared("pathways", pathways) > 0).astype(float) if pathways else np.zeros(n)
        if substances and pathways:
            fractions["substances_pathway"] = 0.6 * sub + 0.4 * path
        else:
            fractions["substances_pathway"] = sub if substances else path
    else:
        fractions["substances_pathway"] = np.full(n, 0.5)
    topics = _norm(member.lived_experience_topics)
    fractions["lived_experience"] = (np.minimum(1.0, table.count_shared("lived_experience_areas", topics) / len(topics))
                                     if topics else np.full(n, 0.5))
    fractions["availability"] = np.minimum(overlap_hours, TARGET_OVERLAP_HOURS) / TARGET_OVERLAP_HOURS
    if member.co_occurring_mental_health == "yes":
        fractions["co_occurring"] = table.co_occurring.astype(float)
    else:
        fractions["co_occurring"] = np.ones(n)
    fractions["leader_load"] = load_fraction(table.open_count, table.capacity)
    base = sum(weights[p] * fractions[p] for p in PARTS if p != "leader_load")
    score = base + weights["leader_load"] * fractions["leader_load"]
    return Evaluation(member, rules, fractions, overlap_hours, feasible, np.asarray(base, dtype=float),
                      np.clip(np.asarray(score, dtype=float), 0, 100))


def load_fraction(open_count, capacity):
    """1 for a leader with nobody yet, falling to 0 at capacity: spreads members across leaders."""
    capacity = np.maximum(np.asarray(capacity, dtype=float), 1.0)
    return np.clip(1.0 - np.asarray(open_count, dtype=float) / capacity, 0.0, 1.0)
