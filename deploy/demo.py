"""A demo a newcomer can run: seed a realistic organization, let the platform work, print what happened.

    ./deploy/demo                        starts the whole platform itself (in var/demo), seeds, reports,
                                         and keeps it running so you can look around (Ctrl-C stops it)
    ./deploy/demo --base-port 8001       uses a platform already started with ./deploy/up (tokens are
                                         signed with var/keys/signing_key.pem; see --help for the other flags)

Seeds an organization with two sites in two time zones, a dozen peer leaders and a hundred members with
varied languages, recovery pathways, availability and channels (some registered one by one, some by CSV
import), and weekly group meetings with registrations. Then it waits (polling, with a deadline) until
matching has proposed or waitlisted everyone who consented, leaders have accepted and booked sessions,
and notifications has sent what it should, and prints: matches made with their top reasons, who is
waitlisted and why, the week's meetings, the notifications per channel, and where to look.

Everything goes over the services' public HTTP APIs, as any client would.
"""
from __future__ import annotations

import argparse
import random
import shutil
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from deploy.platform_under_test import ApiClient
from shared.auth import SigningKey, issue_token

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("intake", "matching", "scheduling", "notifications")
DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
CSV_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

FIRST_NAMES = {
    "en": ["James", "Mary", "Robert", "Patricia", "Michael", "Linda", "David", "Susan", "Chris", "Karen", "Daniel",
           "Nancy", "Mark", "Betty", "Paul", "Sandra", "Kevin", "Ashley", "Brian", "Donna", "Jordan", "Taylor"],
    "es": ["Ana", "Luis", "Carmen", "José", "María", "Javier", "Lucía", "Diego", "Rosa", "Miguel", "Elena", "Pablo",
           "Sofía", "Andrés", "Isabel", "Mateo"],
    "pt": ["João", "Beatriz", "Tiago", "Mariana"],
    "fr": ["Camille", "Louis", "Chloé", "Hugo"],
    "vi": ["Minh", "Linh", "Huy"],
}
LAST_NAMES = ["Rivera", "Nguyen", "Johnson", "García", "Smith", "Martínez", "Brown", "López", "Davis", "Hernández",
              "Wilson", "González", "Moore", "Pérez", "Taylor", "Sánchez", "Anderson", "Ramírez", "Thomas", "Silva"]
SUBSTANCES = ["alcohol", "opioids", "stimulants", "cannabis", "benzodiazepines", "methamphetamine"]
PATHWAYS = ["twelve_step", "smart", "medication_assisted", "faith_based", "harm_reduction"]
TOPICS = ["parenting", "grief", "employment", "housing", "veterans", "lgbtq", "chronic_pain", "justice_involvement"]
WINDOWS = [("09:00", "12:00"), ("12:00", "15:00"), ("17:00", "20:00"), ("18:00", "21:00"), ("10:00", "16:00")]


@dataclass
class Platform:
    """An already running platform (./deploy/up): the same calls PlatformUnderTest offers the demo."""
    url_base: str
    base_port: int
    mail_http_port: int
    signing_key: SigningKey

    def url(self, service: str) -> str:
        if service == "console":  # after the four services (deploy/local.py Ports.web): base + 4
            return f"{self.url_base}:{self.base_port + len(SERVICES)}"
        if service == "reporting":  # after the console: base + 5
            return f"{self.url_base}:{self.base_port + len(SERVICES) + 1}"
        return f"{self.url_base}:{self.base_port + SERVICES.index(service)}"

    @property
    def mail_url(self) -> str:
        return f"{self.url_base}:{self.mail_http_port}"

    def token(self, organization_id, role, *, sites=None, leader_id=None, ttl_seconds=3600) -> str:
        return issue_token(self.signing_key, organization_id=organization_id, role=role, sites=sites,
                           leader_id=leader_id, ttl_seconds=ttl_seconds)

    def client(self, service: str, token: str | None = None) -> ApiClient:
        return ApiClient(self.url(service), token)

    def mail(self, to: str | None = None) -> list[dict]:
        return requests.get(f"{self.mail_url}/messages", params={"to": to} if to else None, timeout=10).json()


@dataclass
class Report:
    organization_id: str
    counts: dict = field(default_factory=dict)
    matches: list = field(default_factory=list)          # [{member, leader, status, score, reasons}]
    waitlist: list = field(default_factory=list)         # [{member, site, reason, reason_codes}]
    meetings: list = field(default_factory=list)         # [{name, site, local_start, time_zone, registered, waitlisted, seats_left}]
    notifications: dict = field(default_factory=dict)    # {channel: {status: n}}
    mail_received: int = 0
    links: list = field(default_factory=list)            # [(what, url)]
    outcomes: list = field(default_factory=list)         # lines of reporting's outcome summary (issue 18)
    text: str = ""


def wait_until(check, *, timeout: float, interval: float = 0.5, what: str = "the platform"):
    """Poll ``check`` until it returns something truthy; give up after ``timeout`` seconds (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not get there within {timeout:.0f}s")
        time.sleep(interval)


# --- seeding ---------------------------------------------------------------------------------------

def _availability(rng: random.Random, evenings_only: bool = False) -> list[dict]:
    days = rng.sample(range(7), rng.randint(2, 5))
    windows = WINDOWS[2:4] if evenings_only else WINDOWS
    return [{"day": d, "start": s, "end": e} for d in sorted(days) for s, e in [rng.choice(windows)]]


def _person(rng: random.Random, language: str, n: int, tag: str) -> dict:
    first = rng.choice(FIRST_NAMES[language])
    last = rng.choice(LAST_NAMES)
    email = f"{first.lower()}.{last.lower()}.{n}.{tag}@example.org"
    email = email.encode("ascii", "ignore").decode()  # plain ASCII local parts
    return {"first_name": first, "last_name": last, "email": email}


def _languages(language: str, rng: random.Random) -> list[str]:
    if language == "es" and rng.random() < 0.5:
        return ["es", "en"]
    return [language]


def seed(platform, *, leaders: int = 12, members: int = 100, seed_value: int = 7, say=print) -> dict:
    """Create the organization and everything in it; return what was made (ids and names)."""
    rng = random.Random(seed_value)
    tag = f"{int(time.time()) % 100000:05d}"
    operator = platform.client("intake", platform.token(None, "operator"))
    org = operator.post("/v1/organizations", json={"name": f"Harbor Light Recovery (demo {tag})",
                                                   "default_language": "en"}).expect(201)
    org_id = org["id"]
    admin = platform.token(org_id, "admin")
    intake = platform.client("intake", admin)
    say(f"Organization {org['name']} ({org_id})")

    sites = [
        intake.post("/v1/sites", json={"name": "Eastside Center", "time_zone": "America/New_York", "address": {
            "street": "120 Harbor St", "city": "Boston", "region": "MA", "postal_code": "02110", "country": "US"}}).expect(201),
        intake.post("/v1/sites", json={"name": "Valle Verde", "time_zone": "America/Los_Angeles", "address": {
            "street": "45 Mission Ave", "city": "Los Angeles", "region": "CA", "postal_code": "90012", "country": "US"}}).expect(201),
    ]
    say(f"  2 sites: {sites[0]['name']} ({sites[0]['time_zone']}), {sites[1]['name']} ({sites[1]['time_zone']})")
    for i, site in enumerate(sites):
        intake.post("/v1/staff", json={"first_name": ["Dana", "Marisol"][i], "last_name": "Coordinator",
                                       "email": f"coordinator{i + 1}.{tag}@example.org", "site_ids": [site["id"]],
                                       "languages": ["en", "es"][: i + 1]}).expect(201)

    made = {"organization_id": org_id, "organization": org["name"], "sites": sites, "leaders": {}, "members": {},
            "tag": tag, "coordinator_email": f"coordinator1.{tag}@example.org"}
    leader_languages = ["en", "es", "en", "es", "en", "fr", "en", "es", "en", "en", "es", "en"]
    for n in range(leaders):
        language = leader_languages[n % len(leader_languages)]
        site = sites[n % 2]
        person = _person(rng, language, n, tag)
        body = {**person, "site_ids": [site["id"]], "languages": ["en", language] if language != "en" else ["en"],
                "preferred_language": language, "availability": _availability(rng),
                "gender": rng.choice(["woman", "man", "non-binary"]), "meets_virtually": rng.random() < 0.5,
                "capacity": rng.randint(2, 5), "substances": rng.sample(SUBSTANCES, 2),
                "pathways": rng.sample(PATHWAYS, 2), "lived_experience_areas": rng.sample(TOPICS, 3),
                "co_occurring_mental_health_experience": rng.random() < 0.4,
                "certifications": [{"name": "Certified Peer Recovery Specialist", "issuer": "State certification board",
                                    "expires_on": "2028-06-30"}]}
        leader = intake.post("/v1/leaders", json=body).expect(201)
        made["leaders"][leader["id"]] = {**person, "site_id": site["id"], "language": language}
    say(f"  {leaders} peer leaders (languages {dict(Counter(v['language'] for v in made['leaders'].values()))})")

    member_languages = ["en"] * 11 + ["es"] * 6 + ["pt", "fr", "vi"]
    one_by_one = members - members * 2 // 5
    csv_rows = {site["id"]: [] for site in sites}
    for n in range(members):
        language = rng.choice(member_languages)
        site = sites[rng.random() < 0.45]
        person = _person(rng, language, 1000 + n, tag)
        consents = ["matching", "notify:email"] if rng.random() < 0.92 else ["notify:email"]
        channels = ["email"]
        extra = {}
        if rng.random() < 0.2:
            extra["phone"] = f"+1{rng.choice(['202', '213', '310', '646'])}55501{n % 100:02d}"
            channels.append("sms")
            consents.append("notify:sms")
        if rng.random() < 0.3:
            channels.append("inapp")
            consents.append("notify:inapp")
        body = {**person, "site_id": site["id"], "languages": _languages(language, rng), "preferred_language": language,
                "date_of_birth": f"{rng.randint(1960, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "availability": _availability(rng, evenings_only=rng.random() < 0.3), "contact_channels": channels,
                "substances": rng.sample(SUBSTANCES, rng.randint(1, 2)), "pathways": rng.sample(PATHWAYS, 1),
                "lived_experience_topics": rng.sample(TOPICS, rng.randint(0, 2)),
                "co_occurring_mental_health": rng.choice(["yes", "no", "prefer_not_to_say"]),
                "meeting_mode": rng.choice(["in_person", "virtual", "either", "either"]), **extra}
        if n < one_by_one:
            member = intake.post("/v1/members", json={**body, "consents": [{"purpose": p} for p in consents]}).expect(201)
            made["members"][member["id"]] = {**person, "site_id": site["id"], "language": language,
                                             "matching": "matching" in consents}
        else:
            csv_rows[site["id"]].append((f"demo-{tag}-{n:03d}", body, consents))

    columns = ["external_id", "first_name", "last_name", "email", "phone", "date_of_birth", "languages",
               "preferred_language", "availability", "contact_channels", "substances", "pathways",
               "lived_experience_topics", "co_occurring_mental_health", "meeting_mode", "consents"]
    imported = 0
    for site_id, rows in csv_rows.items():
        if not rows:
            continue
        lines = [",".join(columns)]
        for external_id, body, consents in rows:
            values = {**body, "external_id": external_id, "consents": ";".join(consents),
                      "availability": ";".join(f"{CSV_DAYS[w['day']]} {w['start']}-{w['end']}" for w in body["availability"])}
            lines.append(",".join(";".join(v) if isinstance(v := values.get(c) or "", list) else str(v) for c in columns))
        report = intake.post(f"/v1/sites/{site_id}/imports", data="\n".join(lines) + "\n",
                             headers={"Content-Type": "text/csv"}).expect(200, 201, 202)
        for row, (external_id, body, consents) in zip(report["rows"], rows):
            if row.get("member_id"):
                imported += 1
                made["members"][row["member_id"]] = {"first_name": body["first_name"], "last_name": body["last_name"],
                                                     "email": body["email"], "site_id": site_id,
                                                     "language": body["preferred_language"],
                                                     "matching": "matching" in consents}
    say(f"  {members} members: {one_by_one} registered one by one, {imported} by CSV import "
        f"(languages {dict(Counter(v['language'] for v in made['members'].values()))})")

    # weekly meetings: two per site, facilitated by the site's leaders, starting in the coming days
    scheduling = platform.client("scheduling", admin)
    made["meetings"] = []
    names = [("Morning Reflections", "discussion", ["O", "D"]), ("Grupo de Apoyo en Español", "discussion", ["O", "S"]),
             ("Step Study", "step study", ["C", "ST"]), ("Family & Friends Night", "speaker", ["O", "SP"])]
    leader_ids = list(made["leaders"])
    for i, (name, fmt, types) in enumerate(names):
        site = sites[i % 2]
        at_site = [lid for lid in leader_ids if made["leaders"][lid]["site_id"] == site["id"]] or leader_ids
        facilitator = at_site[(i // 2) % len(at_site)]
        local = (datetime.now(timezone.utc) + timedelta(days=1 + i)).astimezone(ZoneInfo(site["time_zone"]))
        start = local.replace(hour=[9, 18, 19, 18][i], minute=30 if i % 2 else 0, second=0, microsecond=0, tzinfo=None)
        body = {"site_id": site["id"], "facilitator_id": facilitator, "name": name, "format": fmt, "types": types,
                "language": "es" if "Español" in name else "en", "capacity": 6 + 2 * i, "is_public": True,
                "attendance_mode": "hybrid" if i == 3 else "in_person",
                "conference_url": "https://meet.example.org/family-night" if i == 3 else None,
                "rrule": f"FREQ=WEEKLY;BYDAY={DAY_CODES[start.weekday()]}",
                "first_start_local": start.isoformat(timespec="minutes"), "duration_minutes": 60 + 30 * (i % 2),
                "description": "Peer-led, all welcome."}
        meeting = wait_until(lambda: _try_create(scheduling, body), timeout=60, what="scheduling (knowing the leaders)")
        made["meetings"].append(meeting)
    # registrations: some members of each site, a few past capacity (they wait)
    registered = 0
    for meeting in made["meetings"]:
        candidates = [mid for mid, m in made["members"].items() if m["site_id"] == meeting["site_id"]]
        for member_id in rng.sample(candidates, min(len(candidates), meeting["capacity"] + 2)):
            wait_until(lambda: _try_register(scheduling, meeting["id"], member_id), timeout=60,
                       what="scheduling (knowing the members)")
            registered += 1
    say(f"  {len(made['meetings'])} weekly meetings, {registered} registrations")
    return made


def _try_create(scheduling: ApiClient, body: dict):
    answer = scheduling.post("/v1/meetings", json=body)
    if answer.status_code == 201:
        return answer.expect(201)
    if answer.status_code == 422 and "/problems/not-yet-known" in answer.text:
        return None  # the leader or site is not known to scheduling yet (intake's events are on their way)
    return answer.expect(201)


def _try_register(scheduling: ApiClient, meeting_id: str, member_id: str):
    answer = scheduling.post(f"/v1/meetings/{meeting_id}/registrations", json={"member_id": member_id})
    if answer.status_code == 422 and "/problems/not-yet-known" in answer.text:
        return None  # the member is not known to scheduling yet
    return answer.expect(201)


# --- letting the platform work ------------------------------------------------------------------------

def work(platform, made: dict, *, timeout: float = 180, sessions: int = 8, say=print) -> None:
    """Wait for matching, let leaders accept their proposals and book a few sessions, wait for notifications."""
    org_id = made["organization_id"]
    admin = platform.token(org_id, "admin")
    matching = platform.client("matching", admin)
    consenting = {mid for mid, m in made["members"].items() if m["matching"]}

    def everyone_placed():
        placed = {m["member_id"] for m in matching.all_items("/v1/matches")} | {w["member_id"] for w in matching.all_items("/v1/waitlist")}
        return consenting <= placed
    say("Waiting for matching to propose or waitlist everyone who consented ...")
    wait_until(everyone_placed, timeout=timeout, interval=1, what="matching")

    proposed = matching.all_items("/v1/matches", status="proposed")
    for match in proposed:  # each leader accepts their proposals
        leader = platform.client("matching", platform.token(org_id, "leader", leader_id=match["leader_id"]))
        answer = leader.post(f"/v1/matches/{match['id']}/accept")
        if answer.status_code not in (200, 409):  # 409: changed meanwhile (re-proposed)
            answer.expect(200)
    say(f"Leaders accepted {len(proposed)} proposals; booking sessions from scheduling's suggestions ...")
    booked = 0
    for match in proposed[:sessions]:
        leader = platform.client("scheduling", platform.token(org_id, "leader", leader_id=match["leader_id"]))

        def suggestions():
            answer = leader.get(f"/v1/matches/{match['id']}/suggestions")
            return answer.status_code == 200 and answer.json.get("suggestions")
        try:
            slots = wait_until(suggestions, timeout=30, what="session suggestions")
        except TimeoutError:
            continue  # no common time in the next two weeks
        for slot in slots:
            if leader.post("/v1/sessions", json={"match_id": match["id"], "start": slot["start"]}).status_code == 201:
                booked += 1
                break
    made["sessions_booked"] = booked

    notifications = platform.client("notifications", admin)

    def settled():
        log = notifications.all_items("/v1/deliveries")
        waiting = [d for d in log if d["status"] in ("pending", "sending")]
        sent = [d for d in log if d["status"] == "delivered"]
        booked_told = sum(1 for d in sent if d["template"] == "session_booked")
        return log if (not waiting and len(sent) > 0 and booked_told >= min(booked, 1)) else None
    say("Waiting for notifications to go out ...")
    wait_until(settled, timeout=timeout, interval=1, what="notifications")


# --- the report -----------------------------------------------------------------------------------------

def report(platform, made: dict) -> Report:
    org_id = made["organization_id"]
    admin = platform.token(org_id, "admin")
    matching = platform.client("matching", admin)
    scheduling = platform.client("scheduling", admin)
    notifications = platform.client("notifications", admin)
    people = {**made["members"], **made["leaders"]}
    site_names = {s["id"]: s["name"] for s in made["sites"]}

    def who(person_id):
        p = people.get(person_id)
        return f"{p['first_name']} {p['last_name'][:1]}." if p else person_id

    out = Report(org_id)
    matches = matching.all_items("/v1/matches")
    for match in sorted(matches, key=lambda m: -m["score"]):
        parts = sorted(match["breakdown"], key=lambda p: (-p["points"], -p["max_points"]))
        out.matches.append({"member": who(match["member_id"]), "leader": who(match["leader_id"]),
                            "status": match["status"], "score": match["score"],
                            "site": site_names.get(match["site_id"], match["site_id"]),
                            "reasons": [p["explanation"] for p in parts[:2]]})
    for entry in matching.all_items("/v1/waitlist"):
        reason = entry["reason"]
        for site_id, name in site_names.items():
            reason = reason.replace(f"site {site_id}", name).replace(site_id, name)
        out.waitlist.append({"member": who(entry["member_id"]), "site": site_names.get(entry["site_id"], entry["site_id"]),
                             "reason": reason, "reason_codes": entry.get("reason_codes") or []})
    now = datetime.now(timezone.utc)
    occurrences = scheduling.get("/v1/occurrences", params={"from": now.isoformat(),
                                                             "to": (now + timedelta(days=7)).isoformat()}).expect(200)
    occurrences = occurrences["items"] if isinstance(occurrences, dict) else occurrences
    for occ in sorted(occurrences, key=lambda o: o["start"]):
        out.meetings.append({"name": occ["name"], "site": site_names.get(occ["site_id"], "online"),
                             "local_start": occ["local_start"], "time_zone": occ["time_zone"],
                             "registered": occ["registered_count"], "waitlisted": occ["waitlisted_count"],
                             "seats_left": occ["seats_left"]})
    per_channel: dict = {}
    for d in notifications.all_items("/v1/deliveries"):
        per_channel.setdefault(d["channel"], Counter())[d["status"]] += 1
    out.notifications = {c: dict(n) for c, n in sorted(per_channel.items())}
    tag = made["tag"]
    out.mail_received = sum(1 for m in platform.mail() if any(tag in addr for addr in m["to"]))
    out.counts = {"sites": len(made["sites"]), "leaders": len(made["leaders"]), "members": len(made["members"]),
                  "matches": len(matches), "active": sum(m["status"] == "active" for m in matches),
                  "waitlisted": len(out.waitlist), "meetings": len(made["meetings"]),
                  "occurrences this week": len(out.meetings), "sessions booked": made.get("sessions_booked", 0),
                  "notifications delivered": sum(c.get("delivered", 0) for c in out.notifications.values())}

    leader_id = next(iter(made["leaders"]))
    feed = scheduling.post("/v1/feed-tokens", json={"person_kind": "leader", "person_id": leader_id}).expect(201)
    out.links = [(f"{s} API docs", f"{platform.url(s)}/docs") for s in SERVICES]
    out.links.insert(0, (f"console: sign in as the demo's coordinator {made['coordinator_email']} (the sign-in link arrives "
                         "in the mail catcher)", f"{platform.url('console')}/sign-in"))
    out.links += [("mail catcher (every email sent)", f"{platform.mail_url}/messages"),
                  ("Meeting Guide feed (public)", f"{platform.url('scheduling')}/v1/feeds/{org_id}/meeting-guide.json")]
    out.links += [(f"{s['name']} meetings calendar (public)", f"{platform.url('scheduling')}/v1/feeds/{org_id}/sites/{s['id']}/meetings.ics")
                  for s in made["sites"]]
    out.links.append((f"{who(leader_id)}'s personal calendar (secret link)", feed["url"] if feed["url"].startswith("http")
                      else f"{platform.url('scheduling')}{feed['url']}"))
    out.outcomes = outcome_summary(platform, org_id, len(made["members"]))
    out.text = render(out, made)
    return out


def outcome_summary(platform, org_id: str, members: int, *, timeout: float = 120) -> list[str]:
    """A few lines of reporting's outcome report for the organization (issue 18), small numbers suppressed
    exactly as the API gives them. Waits until reporting has seen every member's registration."""
    reporting = platform.client("reporting", platform.token(org_id, "admin"))

    def caught_up():
        got = reporting.get("/v1/reports/outcomes")
        if got.status_code != 200:
            return None
        onboarded = got.json["reach"]["onboarded"]
        return got.json if onboarded == members or (isinstance(onboarded, str) and members < 11) else None
    r = wait_until(caught_up, timeout=timeout, interval=1, what="reporting")
    reach, access, engagement = r["reach"], r["access"], r["engagement"]

    def spread(s):
        return f"median {s['median']} days, 90th percentile {s['p90']} (n {s['n']})" if s["n"] else "nobody yet"
    capital = r["recovery_capital"]["BARC-10"]
    languages = ", ".join(f"{k} {v}" for k, v in reach["by_language"].items())
    return [f"  period {r['from']} to {r['to']}; any figure of fewer than {r['min_cell']} people reads "
            f"\"{r['suppressed']}\"",
            f"  reach: {reach['onboarded']} onboarded, {reach['active_at_end']} active, {reach['leaders_active_at_end']} "
            f"leaders active; by language: {languages}",
            f"  access: first proposal {spread(access['days_to_first_proposal'])}; accepted match "
            f"{spread(access['days_to_accepted_match'])}; {access['waiting_at_end']['members']} waiting",
            f"  engagement: {engagement['sessions_held']} one-on-one sessions held by {engagement['members_with_sessions']} "
            f"members; {engagement['meeting_attendances']} meeting attendances; retention at 30 days "
            f"{engagement['retention']['day_30']['share']} (cohort {engagement['retention']['day_30']['cohort']})",
            f"  recovery capital (BARC-10, first vs latest): {capital['members']} members, mean change "
            f"{capital['mean_change']}, improved {capital['improved']}, unchanged {capital['unchanged']}, "
            f"worse {capital['worse']}",
            f"  the whole report: {platform.url('reporting')}/v1/reports/outcomes (CSV: .../outcomes.csv), "
            f"admin token required"]


def render(out: Report, made: dict) -> str:
    lines = [f"\n=== What happened in {made['organization']} ({out.organization_id}) ===", ""]
    lines.append("  " + ", ".join(f"{k}: {v}" for k, v in out.counts.items()))
    lines += ["", f"--- Matches made ({len(out.matches)}; {out.counts['active']} accepted by the leader), best first ---"]
    for m in out.matches[:12]:
        lines.append(f"  {m['member']:<16} with {m['leader']:<16} {m['status']:<9} score {m['score']:5.1f}  at {m['site']}")
        for reason in m["reasons"]:
            lines.append(f"      - {reason}")
    if len(out.matches) > 12:
        lines.append(f"  ... and {len(out.matches) - 12} more")
    lines += ["", f"--- Waitlisted ({len(out.waitlist)}) and why ---"]
    by_code = Counter(code for w in out.waitlist for code in (w["reason_codes"] or ["other"])[:1])
    if by_code:
        lines.append("  what left nobody: " + ", ".join(f"{code.replace('_', ' ')} {n}" for code, n in by_code.most_common()))
    shown = sorted(out.waitlist, key=lambda w: ((w["reason_codes"] or ["other"])[0], w["member"]))
    for code in by_code:  # a few of each kind, each with the reason in words
        for w in [w for w in shown if (w["reason_codes"] or ["other"])[0] == code][:3]:
            lines.append(f"  {w['member']:<16} {w['reason']}")
    lines += ["", "--- This week's meetings (local time at the site) ---"]
    for m in out.meetings:
        lines.append(f"  {m['local_start'][:16].replace('T', ' ')} {m['time_zone']:<20} {m['name']:<28} at {m['site']:<16}"
                     f" {m['registered']} registered, {m['waitlisted']} waiting, {m['seats_left']} seats left")
    lines += ["", "--- Notifications, per channel ---"]
    for channel, statuses in out.notifications.items():
        lines.append(f"  {channel:<8} " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    lines.append(f"  (the mail catcher holds {out.mail_received} emails to this organization's people)")
    if out.outcomes:
        lines += ["", "--- Outcomes for funders (reporting; small numbers suppressed) ---", *out.outcomes]
    lines += ["", "--- Where to look ---"]
    for what, url in out.links:
        lines.append(f"  {what:<48} {url}")
    return "\n".join(lines)


def run(platform, *, leaders: int = 12, members: int = 100, timeout: float = 180, say=print) -> Report:
    """Seed, let the platform work, report (the function tests/test_demo.py runs)."""
    made = seed(platform, leaders=leaders, members=members, say=say)
    work(platform, made, timeout=timeout, sessions=max(2, leaders // 2), say=say)
    return report(platform, made)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./deploy/demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--var", default=None, help="folder: where the demo platform runs (default var/demo), or, with "
                                                    "--base-port, the ./deploy/up folder holding keys/signing_key.pem (default var)")
    parser.add_argument("--url-base", default=None, help="use a running platform at this address (e.g. http://127.0.0.1)")
    parser.add_argument("--base-port", type=int, default=None, help="first service port of a running platform (8001)")
    parser.add_argument("--mail-http-port", type=int, default=8026, help="mail catcher HTTP port of a running platform")
    parser.add_argument("--leaders", type=int, default=12)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=240, help="seconds to wait for the platform to work")
    parser.add_argument("--exit", action="store_true", help="stop the demo platform after the report")
    args = parser.parse_args(argv)

    def stop_on_sigterm(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop_on_sigterm)  # stop the demo platform's processes on a plain kill too

    started = None
    if args.url_base or args.base_port:
        var = Path(args.var or ROOT / "var")
        key_file = var / "keys" / "signing_key.pem"
        if not key_file.exists():
            print(f"No {key_file}: start the platform with ./deploy/up first (or pass --var).", file=sys.stderr)
            return 2
        platform = Platform(args.url_base or "http://127.0.0.1", args.base_port or 8001, args.mail_http_port,
                            SigningKey.load(key_file))
    else:
        from deploy.platform_under_test import PlatformUnderTest

        var = Path(args.var or ROOT / "var" / "demo")
        if var.exists():
            shutil.rmtree(var)  # a fresh demo each time (this folder is the demo's own)
        var.mkdir(parents=True)
        print(f"Starting the platform in {var} (broker, database, mail catcher, 4 services) ...", flush=True)
        started = platform = PlatformUnderTest.start(var)
    try:
        out = run(platform, leaders=args.leaders, members=args.members, timeout=args.timeout,
                  say=lambda *a: print(*a, flush=True))
        print(out.text, flush=True)
        if started is not None and not args.exit:
            print(f"\nThe platform keeps running (logs in {var / 'logs'}). Press Ctrl-C to stop it.", flush=True)
            while True:
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    except TimeoutError as exc:
        print(f"\nThe demo gave up waiting: {exc}. Logs: {var / 'logs' if started else 'see ./deploy/up'}", file=sys.stderr)
        return 1
    finally:
        if started is not None:
            print("Stopping the demo platform ...", flush=True)
            started.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
