"""Words and names for the Leaders and Matching pages (issue 16): who is who (matching holds ids only, so
names come from intake), times in a site's zone with the zone shown, certification warnings, and a proposal's
score turned into sentences a coordinator reads ("Speaks Spanish, like Ana", "Both are free in the evenings").

The sentences are built here from the two people's profiles at intake and matching's score parts (points per
part), not from matching's English explanation, so they read the same in English and Spanish.
"""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from flask_babel import get_locale

from console.i18n import N_, gettext as _, ngettext, words
from console.views.lookup import by_ids, names_by_ids, sites as site_records

PAGE = 200                      # intake's and matching's largest page
EXPIRY_WARNING_DAYS = 30


def display_name(person: dict | None) -> str | None:
    """The name staff know the person by (their preferred name first)."""
    if not person:
        return None
    first = person.get("preferred_name") or person.get("first_name") or ""
    return " ".join(p for p in (first, person.get("last_name")) if p) or None


def first_name(person: dict | None) -> str:
    return (person or {}).get("preferred_name") or (person or {}).get("first_name") or _("the member")


class Directory:
    """Names for one page. Sites come in one call; members and leaders in one call for all those a page
    shows (``load``: intake's ``?ids=``, with the sites, at once), or one call for each one asked for later;
    every leader of the organization (``leaders()``, for a choice of leader) in one call per 200."""

    def __init__(self, client):
        self.client = client
        self._members: dict[str, dict | None] = {}
        self._names: dict[str, dict | None] = {}   # members the page names only (kept: lookup.names_by_ids)
        self._leader_records: dict[str, dict | None] = {}
        self._leaders: dict[str, dict] | None = None

    def load(self, member_ids=(), leader_ids=(), *, named_ids=(), all_leaders: bool = False) -> "Directory":
        """Fetch at once the sites, the members and the leaders named (or every leader), so the page's names
        cost two or three calls whatever its length. ``member_ids``: members whose profile the page reads (a
        proposal's reasons); ``named_ids``: members it only names (the waiting list), whose names may be kept
        from the person's last pages (``names_by_ids``)."""
        members = [i for i in dict.fromkeys(member_ids) if i and i not in self._members]
        named = [i for i in dict.fromkeys(named_ids)
                 if i and i not in self._members and i not in self._names and i not in members]
        leaders = [i for i in dict.fromkeys(leader_ids) if i and i not in self._leader_records]
        calls = [lambda: self.sites()]
        if members:
            calls.append(lambda: self._members.update({i: None for i in members}
                                                      | by_ids(self.client, "members", members, fields=REASON_FIELDS)))
        if named:
            calls.append(lambda: self._names.update({i: None for i in named}
                                                    | names_by_ids(self.client, "members", named)))
        if all_leaders:
            calls.append(lambda: self.leaders())
        elif leaders:
            calls.append(lambda: self._leader_records.update({i: None for i in leaders}
                                                             | by_ids(self.client, "leaders", leaders,
                                                                      fields=LEADER_REASON_FIELDS)))
        self.client.together(*calls)
        return self

    def member(self, member_id: str) -> dict | None:
        if member_id not in self._members:
            self.load(member_ids=[member_id])
        return self._members[member_id]

    def leaders(self) -> dict[str, dict]:
        if self._leaders is None:
            self._leaders = {l["id"]: l for l in all_pages(self.client, "intake", "/v1/leaders")}
        return self._leaders

    def leader(self, leader_id: str) -> dict | None:
        if self._leaders is not None:
            return self._leaders.get(leader_id)
        if leader_id not in self._leader_records:
            self.load(leader_ids=[leader_id])
        return self._leader_records[leader_id]

    def sites(self) -> dict[str, dict]:
        return site_records(self.client)   # remembered for the request there

    def site_name(self, site_id: str | None) -> str:
        site = self.sites().get(site_id or "")
        return site["name"] if site else _("another site")

    def site_zone(self, site_id: str | None) -> str:
        site = self.sites().get(site_id or "")
        return (site or {}).get("time_zone") or "UTC"

    def member_name(self, member_id: str) -> str:
        if member_id in self._members:
            record = self._members[member_id]
        else:
            if member_id not in self._names:
                self.load(named_ids=[member_id])
            record = self._names[member_id]
        return display_name(record) or _("A member (name not available)")

    def leader_name(self, leader_id: str) -> str:
        return display_name(self.leader(leader_id)) or _("A peer leader (name not available)")


def all_pages(client, service: str, path: str, params: dict | None = None, most: int = 2000) -> list[dict]:
    items, offset = [], 0
    while offset < most:
        page = client.get(service, path, params={**(params or {}), "limit": PAGE, "offset": offset}) or {}
        items.extend(page.get("items", []))
        offset += PAGE
        if offset >= page.get("total", 0):
            break
    return items


def when(value: str | datetime | None, zone: str) -> str:
    """A moment in ``zone``, with the zone shown: "May 14, 2025, 5:00 PM (America/Chicago)"."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{format_datetime(moment, format='medium', tzinfo=ZoneInfo(zone), locale=get_locale())} ({zone})"


def language_name(code: str) -> str:
    try:
        return Locale.parse(code.replace("-", "_")).get_display_name(get_locale()) or code
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - an unknown code is shown as it is
        return code


def pathway_name(code: str) -> str:
    names = {"twelve_step": _("a twelve-step pathway"), "smart": _("SMART Recovery"),
             "medication_assisted": _("medication-assisted recovery"), "faith_based": _("a faith-based pathway"),
             "harm_reduction": _("harm reduction"), "tapering_prescribed_medication": _("tapering prescribed medication"),
             "other": _("another pathway")}
    return names.get(code, code)


LEADER_STATUS_WORDS = {"active": N_("Active"), "on_leave": N_("On leave"), "retired": N_("Retired")}


def status_words(status: str | None) -> str:
    return words(LEADER_STATUS_WORDS, status)


def certification_warnings(leader: dict, today: date) -> list[str]:
    """Expired, or expiring within 30 days, in words; or that none is on record."""
    certifications = leader.get("certifications") or []
    if not certifications:
        return [_("No certification on record: this leader cannot be matched until one is added.")]
    warnings = []
    for cert in certifications:
        if not cert.get("expires_on"):
            continue
        expires = date.fromisoformat(cert["expires_on"][:10])
        on = format_date(expires, format="long", locale=get_locale())
        days = (expires - today).days
        if days < 0:
            warnings.append(_("%(name)s expired on %(date)s.", name=cert.get("name", ""), date=on))
        elif days <= EXPIRY_WARNING_DAYS:
            warnings.append(ngettext("%(name)s expires in %(num)d day, on %(date)s.",
                                     "%(name)s expires in %(num)d days, on %(date)s.", days,
                                     name=cert.get("name", ""), date=on))
    return warnings


# --- a proposal's score in sentences ---------------------------------------------------------------

def _base(code: str) -> str:
    return code.split("-")[0].split("_")[0].lower()


def _periods(windows: list[dict]) -> set[str]:
    """Parts of the day a person has time in (in their own zone): morning, afternoon, evening."""
    found = set()
    for window in windows or []:
        start, end = window.get("start", "00:00"), window.get("end", "00:00")
        s, e = int(start[:2]) * 60 + int(start[3:5]), int(end[:2]) * 60 + int(end[3:5])
        for name, lo, hi in (("morning", 0, 12 * 60), ("afternoon", 12 * 60, 17 * 60), ("evening", 17 * 60, 24 * 60)):
            if s < hi and e > lo:
                found.add(name)
    return found


PART_TITLES = {"substances_pathway": N_("Shared substances and recovery pathway"),
               "lived_experience": N_("Shared lived experience"), "availability": N_("Weekly time in common"),
               "co_occurring": N_("Co-occurring mental health experience"), "leader_load": N_("How busy the leader is")}


def part_title(part: str) -> str:
    return words(PART_TITLES, part)


# What ``reasons`` and the names read of a member and of a peer leader (the Directory asks intake for these alone).
REASON_FIELDS = ("first_name", "last_name", "preferred_name", "languages", "pathways", "substances",
                 "lived_experience_topics", "availability", "co_occurring_mental_health", "site_id")
LEADER_REASON_FIELDS = ("first_name", "last_name", "preferred_name", "languages", "pathways", "substances",
                        "lived_experience_areas", "availability", "co_occurring_mental_health_experience", "site_ids",
                        "meets_virtually")


def reasons(member: dict | None, leader: dict | None, breakdown: list[dict], site_name: str) -> list[str]:
    """Why this leader for this member, in sentences, strongest first where the profiles say it."""
    if not member or not leader:
        return []
    name = first_name(member)
    points = {p["part"]: p for p in breakdown or []}
    out = []
    shared_languages = sorted({_base(c) for c in member.get("languages") or []}
                              & {_base(c) for c in leader.get("languages") or []})
    if shared_languages:
        out.append(_("Speaks %(languages)s, like %(name)s.",
                     languages=_(" and ").join(language_name(c) for c in shared_languages), name=name))
    pathways = sorted(set(member.get("pathways") or []) & set(leader.get("pathways") or []))
    for pathway in pathways:
        out.append(_("Both follow %(pathway)s.", pathway=pathway_name(pathway)))
    substances = sorted({s.lower() for s in member.get("substances") or []} & {s.lower() for s in leader.get("substances") or []})
    if substances:
        out.append(_("Both have lived experience with %(substances)s.", substances=", ".join(substances)))
    topics = sorted({t.lower() for t in member.get("lived_experience_topics") or []}
                    & {t.lower() for t in leader.get("lived_experience_areas") or []})
    if topics:
        out.append(_("Both know %(topics)s from their own lives.", topics=", ".join(topics)))
    common = _periods(member.get("availability")) & _periods(leader.get("availability"))
    availability = points.get("availability")
    if common and (availability is None or availability.get("points", 0) > 0):
        words = {"morning": _("mornings"), "afternoon": _("afternoons"), "evening": _("evenings")}
        out.append(_("Both are free in the %(times)s.",
                     times=_(" and ").join(words[p] for p in ("morning", "afternoon", "evening") if p in common)))
    if member.get("co_occurring_mental_health") == "yes" and leader.get("co_occurring_mental_health_experience"):
        out.append(_("Has lived experience of a co-occurring mental health condition, as %(name)s does.", name=name))
    if member.get("site_id") in (leader.get("site_ids") or []):
        out.append(_("Works at %(name)s's site, %(site)s.", name=name, site=site_name))
    elif leader.get("meets_virtually"):
        out.append(_("Meets virtually."))
    return out


def score_parts(breakdown: list[dict]) -> list[dict]:
    return [{"title": part_title(p.get("part", "")), "points": round(p.get("points", 0)),
             "max_points": round(p.get("max_points", 0))} for p in breakdown or []]


WAIT_REASONS = {
    "no_consent": lambda: _("Has not given consent to be matched (or it has expired)."),
    "member_inactive": lambda: _("Is not active at the moment."),
    "no_active_leader": lambda: _("No peer leader is active."),
    "no_certified_leader": lambda: _("No active peer leader has a current certification."),
    "no_leader_at_site": lambda: _("No certified peer leader works at this member's site or meets virtually."),
    "no_shared_language": lambda: _("No available peer leader speaks this member's language."),
    "no_gender_match": lambda: _("No available peer leader matches the gender this member asked for."),
    "no_availability_overlap": lambda: _("No available peer leader is free at the times this member is."),
    "all_excluded": lambda: _("Every suitable peer leader was blocked or turned down before."),
    "no_capacity": lambda: _("Every suitable peer leader is full."),
    "leaders_stretched": lambda: _("The peer leader who could take this member said they are stretched, so new "
                                   "proposals to them are paused until that is lifted."),
}


def wait_reason(item: dict) -> str:
    """Why nobody can take this member now, in the person's language (matching's words as a fallback)."""
    for code in item.get("reason_codes") or []:
        if code in WAIT_REASONS:
            return WAIT_REASONS[code]()
    return item.get("reason") or _("No peer leader can take this member now.")
