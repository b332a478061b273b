"""Members in the words a coordinator uses: statuses, flags, consents, screenings and times, and the
helpers the members' pages share (issue 16 "Members")."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import abort, make_response, render_template

from console.i18n import N_, gettext as _, words
from console.api_client import ApiError
from console.views.lookup import sites as site_records

PAGE_SIZE = 25
# What the members list shows of each member (intake's ``?fields=``: no more of the record than the page shows).
LISTED_FIELDS = ("first_name", "last_name", "preferred_name", "status", "site_id", "flags")
CONSENT_HOW = ("paper", "in_person")
OFFERED_CONSENTS = ("matching", "notify:email", "notify:sms")


STATUS_WORDS = {"pending_consent": N_("waiting for consent"), "active": N_("active"), "paused": N_("paused"),
                "discharged": N_("discharged"), "graduated": N_("graduated")}
FLAG_WORDS = {"risk": N_("risk to follow up")}
CONSENT_HOW_WORDS = {"given on paper": N_("given on paper"), "given in person": N_("given in person")}
BAND_WORDS = {"low": N_("low"), "moderate": N_("moderate"), "strong": N_("strong"), "high": N_("high"),
              "severe": N_("severe"), "none": N_("none"), "substantial": N_("substantial"),
              "positive": N_("positive"), "negative": N_("negative")}
MATCH_WORDS = {"proposed": N_("proposed, waiting for an answer"), "active": N_("matched"), "declined": N_("declined"),
               "expired": N_("expired without an answer"), "ended": N_("ended")}
DELIVERY_WORDS = {"delivered": N_("delivered"), "pending": N_("waiting to be sent"), "sending": N_("being sent"),
                  "failed": N_("failed"), "held": N_("held until quiet hours end"),
                  "digest": N_("kept for the daily summary"), "digested": N_("sent in the daily summary"),
                  "cancelled": N_("not sent")}
CHANNEL_WORDS = {"email": N_("email"), "sms": N_("text (SMS)"), "inapp": N_("in the app")}


def status_words(status: str | None) -> str:
    return words(STATUS_WORDS, status)


def flag_words(flag: str) -> str:
    return words(FLAG_WORDS, flag)


def consent_words(purpose: str) -> str:
    words = {"matching": _("being matched with a peer leader"), "notify:email": _("messages by email"),
             "notify:sms": _("messages by text (SMS)"), "notify:inapp": _("messages in the app")}
    if purpose in words:
        return words[purpose]
    if purpose.startswith("share:"):
        return _("sharing with the program %(program)s", program=purpose.removeprefix("share:"))
    return purpose


def consent_how_words(note: str | None) -> str | None:
    """The note recorded with a consent; "given on paper" / "given in person" in the reader's language."""
    return words(CONSENT_HOW_WORDS, note) if note else note


def band_words(band: str | None) -> str:
    return words(BAND_WORDS, band)


def match_words(status: str | None) -> str:
    return words(MATCH_WORDS, status)


def delivery_words(status: str | None) -> str:
    return words(DELIVERY_WORDS, status)


def channel_words(channel: str | None) -> str:
    return words(CHANNEL_WORDS, channel)


def local_time(value: str | None, zone: str | None) -> str:
    """An ISO time as "2026-03-05 18:30 (America/Chicago)" in ``zone`` (the member's, else UTC)."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    name = zone or "UTC"
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(name))
    return f"{moment:%Y-%m-%d %H:%M} ({name})"


def full_name(member: dict) -> str:
    return " ".join(p for p in (member.get("first_name"), member.get("last_name")) if p) or _("(no name)")


def known_name(member: dict) -> str:
    """The name staff call the person: preferred name first, then last name."""
    first = member.get("preferred_name") or member.get("first_name") or ""
    return " ".join(p for p in (first, member.get("last_name")) if p) or _("(no name)")


def site_names(client) -> dict[str, str]:
    """The sites the signed-in person may see (coordinators: theirs), id -> name."""
    return {site_id: site["name"] for site_id, site in site_records(client).items()}


def member_or_404(client, member_id: str, include: tuple[str, ...] = ()) -> dict:
    """The member (with the parts ``include`` names, in ``included``), or the 404 page when intake will not
    show them (another site's, erased, unknown)."""
    try:
        return client.get("intake", f"/v1/members/{member_id}", params={"include": list(include)} if include else None)
    except ApiError as error:
        if error.status in (403, 404, 422):
            abort(404)
        if error.status == 410:
            abort(make_response(render_template(
                "error.html", status=410, title=_("This member's data was erased"),
                message=_("The member asked for it, so nothing about them is kept here.")), 410))
        raise


def maybe(call):
    """A part of a page from another service: its answer, or None when that service refuses or is away."""
    from console.api_client import ServiceUnavailable
    try:
        return call()
    except (ApiError, ServiceUnavailable):
        return None


def form_errors(error: ApiError, fields: tuple[str, ...]) -> tuple[dict[str, list[str]], list[str]]:
    """The API's field errors split into those a form field shows and the rest (shown above the form)."""
    by_field, general = {}, []
    for name, messages in error.field_errors().items():
        key = name.split(".")[0]
        if key in fields:
            by_field.setdefault(key, []).extend(messages)
        else:
            general.extend(messages)
    if not by_field and not general:
        general.append(error.detail or error.title)
    return by_field, general


def barc_chart(screenings: list[dict], zone: str | None) -> dict | None:
    """Points of a BARC-10 line chart (oldest first) on a 320 x 160 drawing; None below two screenings."""
    barc = sorted((s for s in screenings if s.get("instrument") == "BARC-10"), key=lambda s: s["recorded_at"])
    if len(barc) < 2:
        return None
    left, right, top, bottom = 40, 310, 10, 140
    step = (right - left) / (len(barc) - 1)
    points = []
    for i, s in enumerate(barc):
        x = left + i * step
        y = bottom - (s["total"] - 10) * (bottom - top) / 50
        points.append({"x": round(x, 1), "y": round(y, 1), "total": s["total"],
                       "when": local_time(s["recorded_at"], zone)[:10]})
    return {"points": points, "line": " ".join(f"{p['x']},{p['y']}" for p in points),
            "threshold_y": round(bottom - (47 - 10) * (bottom - top) / 50, 1), "top": top, "bottom": bottom,
            "left": left, "right": right}
