"""The read model as the rules see it: members, leaders and the context of a decision (plain
dataclasses the repository builds from intake's events), and how their languages are named."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable, Sequence

LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "fr": "French", "pt": "Portuguese", "zh": "Chinese", "vi": "Vietnamese",
    "ar": "Arabic", "ru": "Russian", "ko": "Korean", "tl": "Tagalog", "ht": "Haitian Creole", "de": "German",
    "it": "Italian", "pl": "Polish", "hi": "Hindi", "ja": "Japanese", "so": "Somali", "am": "Amharic",
    "fa": "Persian", "uk": "Ukrainian", "ase": "American Sign Language", "nv": "Navajo", "hmn": "Hmong",
}


def language_name(code: str) -> str:
    base = _language_base(code.strip().lower())
    return f"{LANGUAGE_NAMES[base]} ({base})" if base in LANGUAGE_NAMES else base


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
    stretched: bool = False                    # said they are stretched: no new proposals until lifted


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


def _norm(values: Iterable[str] | None) -> set[str]:
    return {str(v).strip().lower() for v in values or () if str(v).strip()}


def _language_base(code: str) -> str:
    return code.split("-")[0]
