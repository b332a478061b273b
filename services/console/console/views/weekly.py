"""A person's usual weekly times as the console's forms ask for them: a weekday and a part of the day
(morning 8:00–12:00, afternoon 12:00–17:00, evening 17:00–21:00), in the person's own time zone (their
home site's). Intake keeps them as ``availability`` windows ``{day: 0..6 (Monday 0), start, end}``;
matching proposes a peer leader only when the two share weekly time.

The peer leader form (leaders.py) and the member forms (members.py, member_actions.py) use these, with the
``weekly`` macro of templates/_weekly.html.
"""
from __future__ import annotations

from console.i18n import gettext as _

DAYS = range(7)
PERIODS = {"morning": ("08:00", "12:00"), "afternoon": ("12:00", "17:00"), "evening": ("17:00", "21:00")}


def day_names() -> list[str]:
    return [_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday")]


def choices() -> dict:
    """What the form's template shows: the days and the parts of the day, in words."""
    return {"days": list(zip(DAYS, day_names())),
            "periods": [("morning", _("Mornings (8:00–12:00)")), ("afternoon", _("Afternoons (12:00–17:00)")),
                        ("evening", _("Evenings (17:00–21:00)"))]}


def slots_of(windows) -> set[str]:
    """Windows -> the form's checked boxes ("<day>-<part>"); windows that are no part of the day are left out."""
    by_times = {times: name for name, times in PERIODS.items()}
    return {f"{w['day']}-{by_times[(w['start'], w['end'])]}" for w in windows or []
            if (w.get("start"), w.get("end")) in by_times}


def windows_of(slots) -> list[dict]:
    """The form's checked boxes -> windows (anything else posted is ignored)."""
    windows = []
    for slot in sorted(slots):
        day, _sep, period = slot.partition("-")
        if day.isdigit() and int(day) in DAYS and period in PERIODS:
            start, end = PERIODS[period]
            windows.append({"day": int(day), "start": start, "end": end})
    return windows


def changed(before_windows, slots) -> list[dict] | None:
    """The windows to save when the boxes differ from ``before_windows`` (times set elsewhere, that are no
    part of the day, are kept as they are), or None when nothing changed."""
    slots = set(slots)
    if slots == slots_of(before_windows):
        return None
    kept = [w for w in before_windows or [] if not slots_of([w])]
    return kept + windows_of(slots)


def in_words(windows) -> list[str]:
    """Windows as people say them: "Monday evening", "Wednesday 09:30–11:00", by day then time."""
    days = day_names()
    parts = {PERIODS["morning"]: _("morning"), PERIODS["afternoon"]: _("afternoon"), PERIODS["evening"]: _("evening")}
    out = []
    for w in sorted(windows or [], key=lambda w: (w.get("day", 0), w.get("start", ""))):
        if w.get("day") not in DAYS:
            continue
        part = parts.get((w.get("start"), w.get("end")))
        out.append(_("%(day)s %(part)s", day=days[w["day"]], part=part) if part
                   else f"{days[w['day']]} {w.get('start')}–{w.get('end')}")
    return out
