"""Reminder fan-out on the whole platform: a weekly meeting series with N registrants (300, 1,000 and
5,000 in one run, full; 300 quick; ``--registrants 300,2000`` chooses); the time from the reminder becoming due to the last reminder email accepted by the SMTP catcher
(scheduling's reminder job: one ReminderDue per person, with its reminder key, 100 to a transaction ->
outbox relay -> notifications' consumer records one delivery each -> its delivery job claims, renders and
sends each), against raw smtplib sends of the same number of messages (the same size as a reminder) to
the same SMTP server, over one reused connection.

Set-up (not timed): members are bulk-imported into intake with only the notify:email consent (so
matching proposes nothing), registered for the meeting through scheduling's API (each gets a
registration confirmation email, which the set-up waits for), with the meeting's first start two days
ahead, so that no reminder is due under the default offsets. Then the scheduling worker is restarted with
REMINDER_OFFSETS_MINUTES set so that the reminder falls due on the next minute boundary at least 15 s
away (offsets are whole minutes and starts whole minutes, so the due instant is exact); the clock starts
at that instant. The platform runs with REMINDER_INTERVAL_SECONDS=1 (bench.journeys.start_platform).

Several sizes share one platform, one after another, each with its own organization and meeting. So that
one size's offset makes no other meeting's reminder due, each later size's meeting starts a day EARLIER
than the one before (the last two days ahead): under the offset chosen for a meeting, every earlier
meeting's reminder is still a day or more away; and after each size the scheduling worker is restarted
with its usual offsets. Each size reports the cost per recipient (due -> last email over N + 1) beside raw
SMTP's cost per message; the last figure is the largest size's per-recipient cost over the smallest's
(flat = 1).

With ``py_spy`` (``./deploy/bench --only reminders --py-spy``), the database, notifications' worker and
scheduling's worker are sampled by py-spy during each fan-out (bench/results/profiles/reminders-<size>-*.txt).
"""
from __future__ import annotations

import json
import smtplib
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import requests

from bench import py_spy
from bench.common import Figure, repeat, seconds
from bench.journeys import MailWatch, Org, TimedTap, wait
from shared.events.scheduling import REMINDERS, ReminderDue
from shared.mongo import connect

ZONE = "America/New_York"
IMPORT_CHUNK = 100           # rows per bulk-import upload (synchronous; gunicorn's timeout is 30 s, on a busy machine)


def _import_members(platform, org: Org, n: int) -> list[str]:
    ids = []
    url = platform.url("intake") + f"/v1/sites/{org.site}/imports"
    for start in range(0, n, IMPORT_CHUNK):
        rows = []
        for i in range(start, min(n, start + IMPORT_CHUNK)):
            body = org.member_body(["notify:email"], tag=f"rem{i}.")
            body.pop("site_id")
            rows.append(json.dumps({**body, "external_id": f"ext-{i}"}))
        resp = requests.post(url, data="\n".join(rows).encode(), timeout=300, headers={
            "Authorization": f"Bearer {org.admin_token}", "Content-Type": "application/x-ndjson"})
        if resp.status_code != 201:
            raise RuntimeError(f"import answered {resp.status_code}: {resp.text[:500]}")
        report = resp.json()
        bad = [r for r in report["rows"] if r["outcome"] != "created"]
        if bad:
            raise RuntimeError(f"import rejected rows: {bad[:3]}")
        ids += [r["member_id"] for r in report["rows"]]
    return ids


def _register_all(platform, org: Org, meeting_id: str, members: list[str], clients: int = 4) -> None:
    url = platform.url("scheduling") + f"/v1/meetings/{meeting_id}/registrations"
    headers = {"Authorization": f"Bearer {org.admin_token}"}
    local = threading.local()

    def one(member_id: str):
        session = getattr(local, "s", None) or requests.Session()
        local.s = session
        deadline = time.monotonic() + 180
        while True:  # scheduling learns of the member from intake's events: retry until it has
            resp = session.post(url, json={"member_id": member_id}, headers=headers, timeout=60)
            if resp.status_code == 201:
                return resp.json()
            if resp.status_code == 409 and resp.json().get("existing"):
                return None  # an earlier try was stored though its answer was a 503 (commit not confirmed in time)
            # 422: scheduling has not yet learnt of the member; 503: the database was too busy to answer in
            # MONGO_TIMEOUT_MS (nothing was changed): both say "try again".
            if resp.status_code not in (422, 503) or time.monotonic() > deadline:
                raise RuntimeError(f"registration answered {resp.status_code}: {resp.text[:500]}")
            time.sleep(0.5)

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, members))
    if None in results:  # some answers were lost: read the meeting's registrations instead
        results = requests.get(url, headers=headers, timeout=120).json()["items"]
    waiting = [r for r in results if r.get("status") != "registered"]
    if waiting:
        raise RuntimeError(f"{len(waiting)} registrations were not seated: {waiting[:2]}")


def _raw_smtp(host: str, port: int, message: bytes, sender: str, recipients: list[str]) -> None:
    with smtplib.SMTP(host, port, timeout=60) as smtp:
        for to in recipients:
            smtp.sendmail(sender, [to], message)


FULL_SIZES = (300, 1000, 5000)


def sizes_of(registrants, quick: bool) -> list[int]:
    """The sizes to measure: ``registrants`` (an int, a list, or '300,1000'), else 300 quick / 300, 1,000, 5,000."""
    if registrants is None:
        return [300] if quick else list(FULL_SIZES)
    if isinstance(registrants, str):
        return [int(part) for part in registrants.split(",") if part.strip()]
    if isinstance(registrants, int):
        return [registrants]
    return [int(n) for n in registrants]


def run(runs: int, quick: bool, platform, registrants=None, py_spy: bool = False) -> list[Figure]:
    sizes = sizes_of(registrants, quick)
    now_local = datetime.now(ZoneInfo(ZONE)).replace(second=0, microsecond=0, tzinfo=None)
    figures, failed = [], {}
    for k, n in enumerate(sizes):
        # later sizes start a day earlier (see the module's docstring)
        start_local = now_local + timedelta(days=2 + len(sizes) - 1 - k)
        try:
            figures.append(_one_size(runs, platform, n, start_local, profiled=py_spy))
            done = figures[-1]  # printed at once: a long run stopped later keeps this size's figure
            print(f"  reminders: {n} registrants: due -> last email {done.median:.2f} s, raw SMTP "
                  f"{done.baseline_median:.3f} s, ratio {done.median / done.baseline_median:.1f}; {done.notes}", flush=True)
        except Exception as exc:  # noqa: BLE001 - one size failing must not lose the others' figures
            traceback.print_exc()
            failed[n] = repr(exc)[:500]
            print(f"  reminders: {n} registrants FAILED: {exc!r}", flush=True)
    if not figures and failed:
        raise RuntimeError(f"every size failed: {failed}")
    per = {f.notes["registrants"]: f.notes["per_recipient_ms"] for f in figures}
    if len(per) > 1:
        small, big = min(per), max(per)
        figures.append(Figure(f"reminders.per-recipient cost {big} vs {small}", "due -> last email / recipients",
                              "ms", [per[big]], f"the same at {small} registrants", [per[small]],
                              higher_is_better=False,
                              notes={"per_recipient_ms": {str(size): value for size, value in sorted(per.items())},
                                     **({"sizes_failed": {str(k): v for k, v in failed.items()}} if failed else {}),
                                     "raw_smtp_per_message_ms": {str(f.notes["registrants"]): f.notes["raw_per_message_ms"]
                                                                 for f in figures}}))
    return figures


def _one_size(runs: int, platform, n: int, start_local: datetime, *, profiled: bool) -> Figure:
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    org = Org(platform, time_zone=ZONE)
    leader = org.leader(capacity=10)
    members = _import_members(platform, org, n)
    timings["setup_import_s"] = time.monotonic() - t0

    scheduling = org.client("scheduling")
    body = {"site_id": org.site, "facilitator_id": leader["id"], "name": "Evening Hope", "capacity": n,
            "attendance_mode": "in_person", "rrule": "FREQ=WEEKLY", "duration_minutes": 60,
            "first_start_local": start_local.isoformat(timespec="minutes")}
    meeting = wait(lambda: (r := scheduling.post("/v1/meetings", json=body)).status_code == 201 and r.json,
                   60, "the meeting to be created (scheduling learning of the leader)", interval=0.5)
    mail = MailWatch(platform)
    before_registrations = time.time_ns()
    t1 = time.monotonic()
    _register_all(platform, org, meeting["id"], members)
    wait(lambda: mail.count_since(before_registrations) >= n, 120 + n * 0.5, f"{n} registration confirmations",
         interval=1.0)
    timings["setup_registrations_and_confirmations_s"] = time.monotonic() - t1

    # Make the reminder due on a minute boundary at least 15 s from now, by restarting the scheduling
    # worker with a single offset that puts start - offset there.
    start_utc = start_local.replace(tzinfo=ZoneInfo(ZONE)).astimezone(timezone.utc)
    now = datetime.now(timezone.utc)
    offset_min = int((start_utc - now - timedelta(seconds=15)).total_seconds() // 60)
    due = start_utc - timedelta(minutes=offset_min)
    inner = platform.platform
    args, env = inner.commands["scheduling-worker"]
    inner.commands["scheduling-worker"] = (args, {**env, "REMINDER_OFFSETS_MINUTES": str(offset_min)})
    tap = TimedTap(platform.bootstrap_servers, [REMINDERS]).__enter__()
    platform.restart("scheduling-worker")
    due_ns = int(due.timestamp() * 1e9)
    expected = n + 1  # every registrant and the facilitator
    recorders = []
    try:
        if profiled:
            wait(lambda: time.time_ns() >= due_ns, 120, "the reminder to fall due", interval=0.2)
            recorders = _start_py_spy(platform, f"reminders-{n}", seconds=30 + n * 0.05)
        wait(lambda: mail.count_since(due_ns) >= n, 120 + n * 0.5, f"{n} reminder emails", interval=0.5)
        # The facilitator's makes n + 1; anything more would be a duplicate: wait until nothing new comes.
        last_count, quiet_since = -1, time.monotonic()
        while time.monotonic() - quiet_since < 5:
            count = mail.count_since(due_ns)
            if count != last_count:
                last_count, quiet_since = count, time.monotonic()
            time.sleep(0.5)
        reminders = sorted(mail.accepted_since(due_ns))
    finally:
        inner.commands["scheduling-worker"] = (args, env)
        tap.close()
        platform.restart("scheduling-worker")  # its usual offsets again, before the next size's set-up
    profile = py_spy.summarize(recorders, top_own=6)
    # Where the time went: scheduling's job + relay (last ReminderDue on the topic), notifications'
    # consumer (last delivery recorded), notifications' delivery job (last email).
    events = tap.first_arrival(lambda e: e.type == ReminderDue.type and e.data.get("meeting_id") == meeting["id"])
    client = connect(platform.mongo_uri("notifications"))
    try:
        recorded = list(client["recoverynet_notifications"].deliveries.find(
            {"organization_id": org.id, "source_event_type": ReminderDue.type},
            {"created_at": 1, "status": 1, "takeovers": 1}))
    finally:
        client.close()
    stages = {}
    if events:
        stages["last_ReminderDue_published_after_due_s"] = round(max(
            at for at in (t for t, e in tap.arrivals if e.type == ReminderDue.type)) - due.timestamp(), 2)
    if recorded:
        last = max(d["created_at"] for d in recorded).replace(tzinfo=timezone.utc)
        stages["last_delivery_recorded_after_due_s"] = round((last - due).total_seconds(), 2)
        stages["deliveries_recorded"] = len(recorded)
        stages["deliveries_taken_over"] = sum(1 for d in recorded if d.get("takeovers"))
    last_ns = int(reminders[-1].name.split("-")[0])
    fan_out = (last_ns - due_ns) / 1e9
    first_s = (int(reminders[0].name.split("-")[0]) - due_ns) / 1e9

    # The baseline: the same number of messages of the same size to the same SMTP server.
    sample = reminders[0].read_bytes()
    host, port = "127.0.0.1", inner.ports.smtp
    recipients = [f"raw.{i}@example.org" for i in range(expected)]
    raw = repeat(runs, lambda: seconds(lambda: _raw_smtp(host, port, sample, "bench@example.org", recipients)))
    raw_median = sorted(raw)[len(raw) // 2]
    return Figure(f"reminders.fan-out {n} registrants", "due -> last email", "s", [fan_out],
                  f"raw smtplib, {expected} messages, 1 connection", raw, higher_is_better=False,
                  notes={"registrants": n, "emails": len(reminders), "expected": expected,
                         "per_recipient_ms": round(fan_out / expected * 1000, 2),
                         "raw_per_message_ms": round(raw_median / expected * 1000, 3),
                         "first_email_after_due_s": round(first_s, 2),
                         "emails_per_s": round(len(reminders) / fan_out, 1),
                         **stages, **{k: round(v, 1) for k, v in timings.items()},
                         **({"py_spy": profile} if profile else {})})


# -- py-spy: where the fan-out's time goes, ours or the database's -------------------------------------------
SAMPLED = ("notifications-worker", "scheduling-worker")
DATABASES_SAMPLED = ("notifications", "scheduling")


def _start_py_spy(platform, label: str, seconds: float) -> py_spy.Recorders:
    inner = platform.platform
    pids = {**{f"database-{owner}": inner.mongos[owner].process.pid for owner in DATABASES_SAMPLED},
            **{name: p.pid for name, p in inner.processes if name in SAMPLED and p.poll() is None}}
    return py_spy.record(pids, label, seconds, who="reminders")
