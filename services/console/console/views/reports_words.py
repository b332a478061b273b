"""The outcome report (reporting's GET /v1/reports/outcomes) in the words a board member reads: each
section's figures as sentences' labels and values, its breakdowns as tables, and its monthly series as
bar charts drawn on the server (an SVG of our own: pygal's SVG carries an inline <style> and <script>,
which the console's Content-Security-Policy refuses, so its charts would be unstyled and log violations).

A figure is (text, hidden): hidden is true when reporting suppressed it ("fewer than 11": 1 to 10 people,
or hidden so another cannot be worked out by subtraction)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from flask_babel import format_date, format_decimal, format_percent

from console.i18n import gettext as _
from console.views.matching_words import language_name, pathway_name

SECTIONS = ("reach", "access", "engagement", "recovery_capital", "safety", "communication")
INSTRUMENTS = ("BARC-10", "AUDIT-C", "DAST-10", "PHQ-2")


def default_range(today: date) -> tuple[date, date]:
    """The last 12 months: the first of the month 11 months ago through today (as reporting's default)."""
    first = today.replace(day=1)
    for _ in range(11):
        first = (first - timedelta(days=1)).replace(day=1)
    return first, today


@dataclass
class Figure:
    label: str
    text: str
    hidden: bool = False


@dataclass
class Table:
    caption: str
    headers: list[str]
    rows: list[list[Figure]]  # the first cell of each row is its heading (a Figure whose text is the label)


@dataclass
class Chart:
    id: str
    title: str
    description: str
    caption: str
    measure: str
    months: list[dict]          # {label, short, figure: Figure, bar: {x, y, width, height} | None, marker_x}
    top: int                    # the scale's top value
    width: int = 320
    height: int = 180
    left: int = 34
    bottom: int = 150
    chart_top: int = 12


@dataclass
class Section:
    id: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


class Words:
    """One report's figures in words; ``suppressed`` is the report's own text for a hidden figure."""

    def __init__(self, report: dict):
        self.report = report
        self.suppressed = report.get("suppressed") or "fewer than 11"
        self.min_cell = int(report.get("min_cell") or 11)

    # --- one value ---------------------------------------------------------------------------------
    def is_hidden(self, value) -> bool:
        return isinstance(value, str) and value == self.suppressed

    def hidden_text(self) -> str:
        return _("fewer than %(k)d", k=self.min_cell)

    def value(self, value, kind: str = "count") -> tuple[str, bool]:
        if self.is_hidden(value):
            return self.hidden_text(), True
        if value is None:
            return _("not enough to say"), False
        if isinstance(value, str):
            return value, False
        if kind == "share":
            return format_percent(value, format="#,##0%"), False
        if kind == "days":
            return _("%(n)s days", n=format_decimal(value, format="#,##0.#")), False
        if kind == "hours":
            return _("%(n)s hours", n=format_decimal(value, format="#,##0.#")), False
        if kind == "change":
            return (("+" if value > 0 else "") + format_decimal(value, format="#,##0.##")), False
        return format_decimal(value, format="#,##0.##"), False

    def fig(self, label: str, value, kind: str = "count") -> Figure:
        text, hidden = self.value(value, kind)
        return Figure(label, text, hidden)

    def head(self, label: str) -> Figure:
        return Figure(label, label)

    # --- months ------------------------------------------------------------------------------------
    @staticmethod
    def month_date(label: str) -> date:
        year, month = label.split("-")
        return date(int(year), int(month), 1)

    def month_name(self, label: str) -> str:
        return format_date(self.month_date(label), "MMMM yyyy")

    def month_short(self, label: str) -> str:
        return format_date(self.month_date(label), "MMM")

    def chart(self, section: str, measure: str, title: str, what: str) -> Chart:
        """A bar per month of ``report[section].monthly[*][measure]``; a hidden month has no bar but a mark."""
        rows = self.report.get(section, {}).get("monthly") or []
        numbers = [r.get(measure) for r in rows if isinstance(r.get(measure), (int, float))]
        top = max([self.min_cell, *numbers]) if numbers else self.min_cell
        c = Chart(id=f"chart-{section}-{measure}".replace("_", "-"), title=title, measure=what,
                  description="", caption="", months=[], top=int(top))
        span = c.width - c.left - 6
        step = span / max(1, len(rows))
        width = max(2.0, step * 0.7)
        hidden_any = False
        for i, r in enumerate(rows):
            value = r.get(measure)
            figure = self.fig(self.month_name(r["month"]), value)
            x = c.left + i * step + (step - width) / 2
            bar = None
            if isinstance(value, (int, float)) and value > 0:
                h = (c.bottom - c.chart_top) * value / c.top
                bar = {"x": round(x, 1), "y": round(c.bottom - h, 1), "width": round(width, 1), "height": round(h, 1)}
            hidden_any = hidden_any or figure.hidden
            c.months.append({"label": r["month"], "short": self.month_short(r["month"]), "figure": figure, "bar": bar,
                             "x": round(x, 1), "mid": round(x + width / 2, 1), "width": round(width, 1),
                             "show_label": (len(rows) - 1 - i) % max(1, -(-len(rows) // 6)) == 0})  # the last month, then evenly back
        c.description = _("A bar for each month from %(first)s to %(last)s; the scale goes from 0 to %(top)s.",
                          first=self.month_name(rows[0]["month"]) if rows else "", last=self.month_name(rows[-1]["month"]) if rows else "",
                          top=format_decimal(c.top))
        if hidden_any:
            c.description += " " + _("Months marked with a dashed line had fewer than %(k)d: their figure is hidden.", k=self.min_cell)
        shown = [(r.get(measure), r["month"]) for r in rows if isinstance(r.get(measure), (int, float))]
        high = max(shown, default=None)
        c.caption = (_("%(title)s: at most %(high)s, in %(month)s. The table lists every month.", title=title,
                       high=format_decimal(high[0]), month=self.month_name(high[1]))
                     if high and high[0] > 0 else _("%(title)s. The table lists every month.", title=title))
        return c

    # --- the sections ------------------------------------------------------------------------------
    def sections(self) -> list[Section]:
        return [self.reach(), self.access(), self.engagement(), self.recovery_capital(), self.safety(),
                self.communication()]

    def reach(self) -> Section:
        r = self.report.get("reach") or {}
        s = Section("reach", _("Reach"))
        s.figures = [self.fig(_("Members onboarded"), r.get("onboarded")),
                     self.fig(_("Members active at the end"), r.get("active_at_end")),
                     self.fig(_("Members discharged"), r.get("discharged")),
                     self.fig(_("Members who graduated"), r.get("graduated")),
                     self.fig(_("Peer leaders active at the end"), r.get("leaders_active_at_end"))]
        s.tables = [
            Table(_("Members onboarded, by first language"), [_("Language"), _("Members")],
                  [[self.head(_("not recorded") if code == "not recorded" else language_name(code)), self.fig("", n)]
                   for code, n in (r.get("by_language") or {}).items()]),
            Table(_("Members onboarded, by the recovery pathway they recorded"), [_("Pathway"), _("Members")],
                  [[self.head(_("not recorded") if code == "not recorded" else pathway_name(code)), self.fig("", n)]
                   for code, n in (r.get("by_pathway") or {}).items()]),
        ]
        s.charts = [self.chart("reach", "onboarded", _("Members onboarded each month"), _("Members onboarded")),
                    self.chart("reach", "active", _("Members active at the end of each month"), _("Members active"))]
        return s

    def access(self) -> Section:
        a = self.report.get("access") or {}
        s = Section("access", _("Access"))
        proposal, match = a.get("days_to_first_proposal") or {}, a.get("days_to_accepted_match") or {}
        waiting = a.get("waiting_at_end") or {}
        s.figures = [self.fig(_("Days from onboarding to a first proposal, median"), proposal.get("median"), "days"),
                     self.fig(_("Days from onboarding to a first proposal, 9 in 10 members within"), proposal.get("p90"), "days"),
                     self.fig(_("Members behind these figures"), proposal.get("n")),
                     self.fig(_("Days from onboarding to an accepted match, median"), match.get("median"), "days"),
                     self.fig(_("Days from onboarding to an accepted match, 9 in 10 members within"), match.get("p90"), "days"),
                     self.fig(_("Members matched behind these figures"), match.get("n")),
                     self.fig(_("Members waiting for a peer leader at the end"), waiting.get("members")),
                     self.fig(_("How long they had waited, median"), waiting.get("median"), "days"),
                     self.fig(_("Proposals declined"), a.get("declined"))]
        from console.views.matching import decline_reasons
        reasons = decline_reasons()
        s.tables = [Table(_("Proposals declined, by reason"), [_("Reason"), _("Proposals")],
                          [[self.head(reasons.get(code, code)), self.fig("", n)]
                           for code, n in (a.get("declined_by_reason") or {}).items()])]
        return s

    def engagement(self) -> Section:
        e = self.report.get("engagement") or {}
        s = Section("engagement", _("Engagement"))
        s.figures = [self.fig(_("One-on-one sessions held"), e.get("sessions_held")),
                     self.fig(_("Members with at least one session"), e.get("members_with_sessions")),
                     self.fig(_("Sessions per member with sessions"), e.get("sessions_per_member")),
                     self.fig(_("Meeting attendances"), e.get("meeting_attendances")),
                     self.fig(_("Members who attended a meeting"), e.get("members_attending"))]
        s.tables = [
            Table(_("Attendance by meeting series"), [_("Meeting"), _("Members"), _("Present"), _("Recorded"), _("Attendance rate")],
                  [[self.head(row.get("meeting") or _("a meeting")), self.fig("", row.get("members")),
                    self.fig("", row.get("present")), self.fig("", row.get("recorded")),
                    self.fig("", row.get("attendance_rate"), "share")] for row in e.get("attendance_by_series") or []]),
            Table(_("Retention: members still engaged after onboarding"),
                  [_("After"), _("Members onboarded that long ago"), _("Still engaged"), _("Share")],
                  [[self.head(_("%(n)d days", n=int(key.removeprefix("day_")))), self.fig("", row.get("cohort")),
                    self.fig("", row.get("engaged")), self.fig("", row.get("share"), "share")]
                   for key, row in (e.get("retention") or {}).items()]),
        ]
        s.charts = [self.chart("engagement", "meeting_attendances", _("Meeting attendances each month"), _("Attendances")),
                    self.chart("engagement", "members_engaged", _("Members engaged each month"), _("Members engaged"))]
        return s

    def recovery_capital(self) -> Section:
        rc = self.report.get("recovery_capital") or {}
        s = Section("recovery_capital", _("Recovery capital"))
        s.tables = [Table(_("First screening compared with the latest, for members screened at least twice"),
                          [_("Screening"), _("Members"), _("Mean change (positive is better)"), _("Improved"),
                           _("Unchanged"), _("Worse")],
                          [[self.head(name), self.fig("", row.get("members")), self.fig("", row.get("mean_change"), "change"),
                            self.fig("", row.get("improved")), self.fig("", row.get("unchanged")), self.fig("", row.get("worse"))]
                           for name in INSTRUMENTS if (row := rc.get(name)) is not None])]
        return s

    def safety(self) -> Section:
        sf = self.report.get("safety") or {}
        s = Section("safety", _("Safety"))
        hours = sf.get("hours_to_resolve") or {}
        s.figures = [self.fig(_("Risk flags raised"), sf.get("flags_raised")),
                     self.fig(_("Members flagged"), sf.get("members_flagged")),
                     self.fig(_("Flags resolved"), sf.get("resolved")),
                     self.fig(_("Time until a flag was resolved, median"), hours.get("median"), "hours"),
                     self.fig(_("Time until a flag was resolved, 9 in 10 within"), hours.get("p90"), "hours"),
                     self.fig(_("Members with a flag still open at the end"), sf.get("members_open_at_end"))]
        s.charts = [self.chart("safety", "flags_raised", _("Risk flags raised each month"), _("Flags raised"))]
        return s

    def communication(self) -> Section:
        c = self.report.get("communication") or {}
        s = Section("communication", _("Communication"))
        s.figures = [self.fig(_("Messages delivered"), c.get("delivered")),
                     self.fig(_("Messages that failed"), c.get("failed")),
                     self.fig(_("Unsubscribes"), c.get("unsubscribed"))]
        from console.views.members_words import channel_words
        s.tables = [Table(_("Messages by channel"), [_("Channel"), _("Delivered"), _("Failed"), _("Unsubscribes")],
                          [[self.head(channel_words(channel)), self.fig("", row.get("delivered")),
                            self.fig("", row.get("failed")), self.fig("", row.get("unsubscribed"))]
                           for channel, row in (c.get("by_channel") or {}).items()])]
        s.charts = [self.chart("communication", "delivered", _("Messages delivered each month"), _("Messages delivered"))]
        return s
