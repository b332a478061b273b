"""Matching's domain rules: who may be paired with whom (hard rules), how well (a 0-100 soft score with
a breakdown in plain words), and the optimal capacitated assignment of many members at once.

Pure: no Flask, pymongo or Kafka. Members and leaders are plain dataclasses built by the repository
from intake's events. Scoring is vectorised over leaders (numpy) so a batch of 10,000 members x 500
leaders is scored in seconds, and the single-pair explanation uses the very same arithmetic.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from shared.clock import minutes_of_day, zone_or_utc
from shared.errors import Conflict

# --- statuses ------------------------------------------------------------------------------------

PROPOSED, ACTIVE, DECLINED, EXPIRED, ENDED = "proposed", "active", "declined", "expired", "ended"
OPEN_STATUSES = (PROPOSED, ACTIVE)          # count against the leader's capacity
MATCH_STATUSES = (PROPOSED, ACTIVE, DECLINED, EXPIRED, ENDED)
ELIGIBLE_MEMBER_STATUSES = ("active", "pending_consent")  # pending_consent still needs the consent itself
# Why a match ended -> does a new proposal follow? (The member's own choice to stop does not; asking
# for a different leader is handled as member_choice *with* a re-proposal by the use case.)
RE_PROPOSE_AFTER = {
    "member_choice": False, "leader_choice": True, "coordinator": True, "leader_left": True,
    "certification_lapsed": True, "consent_revoked": False, "member_inactive": False, "member_erased": False,
}

# --- weights -------------------------------------------------------------------------------------

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
SLOT_MINUTES = 15                # weekly availability is compared on a 15-minute UTC grid
SLOTS_PER_WEEK = 7 * 24 * 60 // SLOT_MINUTES
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAY_SHORT = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "fr": "French", "pt": "Portuguese", "zh": "Chinese", "vi": "Vietnamese",
    "ar": "Arabic", "ru": "Russian", "ko": "Korean", "tl": "Tagalog", "ht": "Haitian Creole", "de": "German",
    "it": "Italian", "pl": "Polish", "hi": "Hindi", "ja": "Japanese", "so": "Somali", "am": "Amharic",
    "fa": "Persian", "uk": "Ukrainian", "ase": "American Sign Language", "nv": "Navajo", "hmn": "Hmong",
}


def language_name(code: str) -> str:
    base = _language_base(code.strip().lower())
    return f"{LANGUAGE_NAMES[base]} ({base})" if base in LANGUAGE_NAMES else base


def describe_availability(windows: Iterable[Window], tz_name: str) -> str:
    """Weekly windows in words, e.g. "Mon-Fri 17:00-20:00, Sat 09:00-12:00 (America/Chicago)"."""
    by_time: dict[tuple[str, str], list[int]] = {}
    for w in windows:
        by_time.setdefault((w.start, w.end), []).append(w.day)
    parts = []
    for (start, end), days in sorted(by_time.items(), key=lambda item: min(item[1])):
        days = sorted(set(days))
        runs, run = [], [days[0]]
        for day in days[1:]:
            if day == run[-1] + 1:
                run.append(day)
            else:
                runs.append(run)
                run = [day]
        runs.append(run)
        names = ", ".join(DAY_SHORT[r[0]] if len(r) == 1 else
                          f"{DAY_SHORT[r[0]]}{'-' if len(r) > 2 else ', '}{DAY_SHORT[r[-1]]}" for r in runs)
        parts.append(f"{names} {start}-{end}")
    return f"{'; '.join(parts) or 'no times given'} ({tz_name})"


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


# --- the read model as the rules see it ----------------------------------------------------------

@dataclass(frozen=True)
class Window:
    day: int        # 0 = Monday
    start: str      # local HH:MM
    end: str        # local HH:MM, 24:00 allowed


@dataclass
class Member:
    member_id: str
    site_id: str
    status: str = "active"
    time_zone: str = "UTC"
    languages: Sequence[str] = ()
    leader_gender_preference: str | None = None
    meeting_mode: str = "either"               # in_person, virtual, either
    availability: Sequence[Window] = ()
    substances: Sequence[str] = ()
    pathways: Sequence[str] = ()
    co_occurring_mental_health: str = "prefer_not_to_say"
    lived_experience_topics: Sequence[str] = ()
    matching_consent: bool = False
    matching_consent_expires_at: datetime | None = None


@dataclass
class Leader:
    leader_id: str
    site_ids: Sequence[str] = ()
    status: str = "active"
    time_zone: str = "UTC"
    languages: Sequence[str] = ()
    gender: str | None = None
    meets_virtually: bool = False
    availability: Sequence[Window] = ()
    capacity: int = 0
    open_count: int = 0                        # proposed + active matches now
    substances: Sequence[str] = ()
    pathways: Sequence[str] = ()
    lived_experience_areas: Sequence[str] = ()
    co_occurring_mental_health_experience: bool = False
    certified_until: date | None = None        # latest expiry of a certification (None: never expires)
    certified: bool = False                    # holds at least one certification


@dataclass
class Context:
    """What the rules need besides the two people: the clock, sites that meet only virtually,
    pairings a coordinator blocked, leaders this member should not get again, and the sites' names
    (reasons in words name a site by its name, never by its id)."""

    now: datetime
    virtual_only_sites: frozenset[str] = frozenset()
    excluded: dict[str, frozenset[str]] = field(default_factory=dict)   # member_id -> leader ids
    site_names: dict[str, str] = field(default_factory=dict)             # site_id -> name

    def site_in_words(self, site_id: str) -> str:
        """'site Riverside' when the name is known; otherwise 'the member's site' (the id stays out of words)."""
        name = (self.site_names.get(site_id) or "").strip()
        return f"site {name}" if name else "the member's site"


# --- time -----------------------------------------------------------------------------------------

def week_start(now: datetime) -> datetime:
    """Monday 00:00 UTC of the week of ``now``: the reference week both sides are placed in (so a
    summer-time change on one side is taken into account for the week we are in)."""
    day = now.astimezone(timezone.utc).date()
    monday = day - timedelta(days=day.weekday())
    return datetime.combine(monday, time(0), tzinfo=timezone.utc)


def availability_slots(windows: Iterable[Window], tz_name: str, now: datetime) -> np.ndarray:
    """Weekly local windows -> a boolean vector of the week's 15-minute slots in UTC (read-only)."""
    return _slots(tuple(windows), tz_name or "UTC", week_start(now))


@lru_cache(maxsize=65536)
def _slots(windows: tuple[Window, ...], tz_name: str, ref: datetime) -> np.ndarray:
    # Cached: every proposal places every leader's week again, and the answer only changes with the
    # windows, the zone or the week (summer time).
    slots = np.zeros(SLOTS_PER_WEEK, dtype=bool)
    tz = zone_or_utc(tz_name)
    for w in windows:
        start_m, end_m = minutes_of_day(w.start, end_of_day=True), minutes_of_day(w.end, end_of_day=True)
        if end_m <= start_m:
            continue
        local_day = ref.date() + timedelta(days=w.day)
        local_start = datetime.combine(local_day, time(0), tzinfo=tz) + timedelta(minutes=start_m)
        offset = (local_start.astimezone(timezone.utc) - ref).total_seconds() / 60
        first = int(round(offset / SLOT_MINUTES))
        count = int(round((end_m - start_m) / SLOT_MINUTES))
        idx = (first + np.arange(count)) % SLOTS_PER_WEEK
        slots[idx] = True
    slots.setflags(write=False)
    return slots


# --- hard rules and soft score over many leaders at once ------------------------------------------

@dataclass
class LeaderTable:
    """The leaders of an organization as arrays (built once per proposal or batch run)."""

    leaders: list[Leader]
    now: datetime
    active: np.ndarray = None
    certified: np.ndarray = None
    remaining: np.ndarray = None
    virtual: np.ndarray = None
    availability: np.ndarray = None            # L x SLOTS (float32, for matrix products)
    co_occurring: np.ndarray = None
    index: dict[str, int] = None

    def __post_init__(self):
        leaders, today = self.leaders, self.now.date()
        self.index = {l.leader_id: i for i, l in enumerate(leaders)}
        self.active = np.array([l.status == "active" for l in leaders], dtype=bool)
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
        self.active = np.array([l.status == "active" for l in self.leaders], dtype=bool)
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


def _norm(values: Iterable[str] | None) -> set[str]:
    return {str(v).strip().lower() for v in values or () if str(v).strip()}


def _language_base(code: str) -> str:
    return code.split("-")[0]


RULES = ("consent", "member_status", "leader_active", "certified", "capacity", "location", "language",
         "gender", "availability", "not_excluded")


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


# --- words -----------------------------------------------------------------------------------------

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
        "leader_active": "the leader is not active", "certified": "no current certification",
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
            described = " ".join(filter(None, [", ".join(adjectives), "leader"]))
            text = "No " + " ".join([described] + phrases)
            return text + ".", [code]
        alive = after
    return "No leader can take the member now.", ["unknown"]


# --- assignment ------------------------------------------------------------------------------------

@dataclass
class Assignment:
    pairs: dict[int, int]        # member index -> leader index
    total_score: float
    scores: dict[int, float]     # member index -> score of its pair (including the slot's load part)


def assign(feasible: np.ndarray | list, base: np.ndarray | list, open_count: Sequence[int], capacity: Sequence[int],
           load_weight: float, *, candidates_per_member: int | None = None) -> Assignment:
    """The best total score under every leader's capacity.

    ``feasible`` and ``base`` are M x L (or a list of M (leader index array, base score array) pairs,
    the sparse form, when ``candidates_per_member`` trimmed them). A leader with ``r`` free places is
    expanded into ``r`` slots; slot ``k`` carries the load part the leader would have with ``k`` members
    more, so filling a leader costs more the fuller it gets (members are spread). Every member also has
    a private "stay waiting" column, so a full matching always exists and a member is left waiting only
    when that raises the total. Solved exactly on the sparse graph with scipy's LAPJVsp
    (min_weight_full_bipartite_matching)."""
    open_count = np.asarray(open_count, dtype=np.int64)
    capacity = np.asarray(capacity, dtype=np.int64)
    remaining = np.maximum(capacity - open_count, 0)
    slot_start = np.concatenate([[0], np.cumsum(remaining)]).astype(np.int64)
    n_slots = int(slot_start[-1])
    if isinstance(feasible, np.ndarray):
        rows_list = [(np.flatnonzero(feasible[m]), np.asarray(base[m], dtype=float)[feasible[m]])
                     for m in range(feasible.shape[0])]
    else:
        rows_list = list(feasible)
    n_members = len(rows_list)
    if n_members == 0:
        return Assignment({}, 0.0, {})
    # slot k of leader l: score = base + load_weight * (1 - (open + k) / capacity)
    slot_leader = np.repeat(np.arange(len(remaining)), remaining)
    slot_k = np.arange(n_slots) - slot_start[slot_leader]
    slot_load = load_weight * load_fraction(open_count[slot_leader] + slot_k, capacity[slot_leader])
    pair_m, pair_l, pair_s = [], [], []
    for m, (leaders, scores) in enumerate(rows_list):
        leaders = np.asarray(leaders, dtype=np.int64)
        scores = np.asarray(scores, dtype=float)
        if candidates_per_member and len(leaders) > candidates_per_member:
            top = np.argpartition(-scores, candidates_per_member - 1)[:candidates_per_member]
            leaders, scores = leaders[top], scores[top]
        pair_m.append(np.full(len(leaders), m, dtype=np.int64))
        pair_l.append(leaders)
        pair_s.append(scores)
    pm, pl, ps = (np.concatenate(pair_m), np.concatenate(pair_l), np.concatenate(pair_s))
    keep = remaining[pl] > 0
    pm, pl, ps = pm[keep], pl[keep], ps[keep]
    # Each candidate pair becomes one edge per free slot of its leader (vectorised expansion).
    counts = remaining[pl]
    n_edges = int(counts.sum())
    first_edge = np.cumsum(counts) - counts
    within = np.arange(n_edges, dtype=np.int64) - np.repeat(first_edge, counts)
    edge_cols = slot_start[np.repeat(pl, counts)] + within
    rows = [np.repeat(pm, counts)]
    cols = [edge_cols]
    vals = [np.repeat(ps, counts) + slot_load[edge_cols]]
    # Costs must be positive (explicit zeros would vanish from the sparse matrix): cost = BIG - score.
    big = 1000.0
    rows.append(np.arange(n_members, dtype=np.int64))
    cols.append(n_slots + np.arange(n_members, dtype=np.int64))
    vals.append(np.zeros(n_members))
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    graph = csr_matrix((big - v, (r, c)), shape=(n_members, n_slots + n_members))
    _, matched_col = min_weight_full_bipartite_matching(graph)
    graph.sort_indices()
    pairs, scores_out = {}, {}
    for m, col in enumerate(matched_col):
        col = int(col)
        if col < n_slots:
            pairs[m] = int(slot_leader[col])
            lo, hi = graph.indptr[m], graph.indptr[m + 1]
            at = lo + int(np.searchsorted(graph.indices[lo:hi], col))
            scores_out[m] = big - float(graph.data[at])
    return Assignment(pairs, float(sum(scores_out.values())), scores_out)


def greedy_assign(feasible: np.ndarray, score: np.ndarray, capacity_left: Sequence[int]) -> Assignment:
    """First come, first served: each member in turn takes their best leader with room (the baseline
    the optimal assignment is measured against; never used to decide anything)."""
    left = np.array(capacity_left, dtype=np.int64)
    pairs, scores = {}, {}
    for m in range(feasible.shape[0]):
        options = np.flatnonzero(feasible[m] & (left > 0))
        if len(options):
            best = options[np.argmax(score[m][options])]
            pairs[m], scores[m] = int(best), float(score[m][best])
            left[best] -= 1
    return Assignment(pairs, float(sum(scores.values())), scores)


# --- lifecycle -------------------------------------------------------------------------------------

class TransitionError(Conflict):
    """The match is not in a state that allows this (answered 409)."""


ALLOWED = {
    "accept": (PROPOSED,),
    "decline": (PROPOSED,),
    "expire": (PROPOSED,),
    "end": (PROPOSED, ACTIVE),
}


def check_transition(status: str, action: str) -> None:
    if status not in ALLOWED[action]:
        raise TransitionError(f"a {status} match cannot be {'ended' if action == 'end' else action + 'd'}")


def certification_valid_until(certifications: Iterable[dict]) -> tuple[bool, date | None]:
    """(holds any certification, latest expiry or None when one never expires)."""
    certs = list(certifications or [])
    if not certs:
        return False, None
    expiries = []
    for cert in certs:
        value = cert.get("expires_on")
        if value in (None, ""):
            return True, None
        expiries.append(value if isinstance(value, date) else date.fromisoformat(str(value)[:10]))
    return True, max(expiries)


def matching_consent(consents: Iterable[dict]) -> tuple[bool, datetime | None]:
    for consent in consents or []:
        if consent.get("purpose") == "matching":
            value = consent.get("expires_at")
            if value in (None, ""):
                return True, None
            if isinstance(value, datetime):
                return True, value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            return True, datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return False, None
