"""Domain rules of notifications: who is told about what, on which channels, when, and how often we
try. Pure functions: no Flask, pymongo or Kafka (unit-tested in tests/unit)."""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from itsdangerous import BadData, BadSignature, Signer
from itsdangerous.encoding import base64_decode, base64_encode
from itsdangerous.signer import HMACAlgorithm

from shared.clock import clock
from shared.clock import zone_or_utc as zone  # a zone read back from our records: UTC when unknown
from shared.events import intake, matching, scheduling

CHANNELS = ("email", "sms", "inapp")          # channels a person can receive on
DELIVERY_CHANNELS = CHANNELS + ("webhook",)   # plus organizations' endpoints
PRIORITIES = ("urgent", "normal", "low")
STATUSES = ("pending", "held", "digest", "sending", "delivered", "failed", "digested", "cancelled")

# Recipients named "coordinators of the event's site" are resolved from the coordinator directory.
COORDINATORS = "coordinators"


@dataclass(frozen=True)
class Recipient:
    person_id: str            # or COORDINATORS, resolved by the handler
    kind: str                 # member, leader, staff
    role: str                 # how the template addresses them: member, leader, coordinator


@dataclass(frozen=True)
class Plan:
    """What one event means for people: a template, a priority, and who is told."""

    template: str
    priority: str
    recipients: tuple[Recipient, ...]


def _member_and_leader(data: dict) -> tuple[Recipient, ...]:
    return (Recipient(data["member_id"], "member", "member"), Recipient(data["leader_id"], "leader", "leader"))


def _registrants(data: dict) -> tuple[Recipient, ...]:
    seen: list[str] = []
    for member_id in data.get("registrant_ids") or []:
        if member_id not in seen:
            seen.append(member_id)
    return tuple(Recipient(m, "member", "member") for m in seen)


def _member(data: dict) -> tuple[Recipient, ...]:
    return (Recipient(data["member_id"], "member", "member"),)


def _the_person(data: dict) -> tuple[Recipient, ...]:
    return (Recipient(data["person_id"], data["person_kind"], data["person_kind"]),)


def _coordinators(data: dict) -> tuple[Recipient, ...]:
    return (Recipient(COORDINATORS, "staff", "coordinator"),)


def _about_a_stretched_leader(data: dict) -> tuple[Recipient, ...]:
    """The pause a leader asked for was lifted: their coordinators hear it when the leader lifted it; the
    leader hears it when staff did."""
    if data.get("lifted_by_role") == "leader":
        return _coordinators(data)
    return (Recipient(data["leader_id"], "leader", "leader"),)


# event type -> (template, priority, who is told)
PLANS = {
    matching.MatchProposed.type: ("match_proposed", "normal", _member_and_leader),
    matching.MatchAccepted.type: ("match_accepted", "normal", _member_and_leader),
    matching.MatchEnded.type: ("match_ended", "normal", _member_and_leader),
    matching.MemberWaitingTooLong.type: ("waiting_too_long", "normal", _coordinators),
    intake.MemberRiskFlagged.type: ("risk_flagged", "urgent", _coordinators),
    # a leader's private "I'm stretched": the coordinators of every site of theirs (site_ids)
    intake.LeaderStretched.type: ("leader_stretched", "normal", _coordinators),
    intake.LeaderStretchLifted.type: ("leader_ready", "normal", _about_a_stretched_leader),
    scheduling.MeetingUpdated.type: ("meeting_updated", "low", _registrants),
    scheduling.MeetingCancelled.type: ("meeting_cancelled", "normal", _registrants),
    scheduling.OccurrenceCancelled.type: ("occurrence_cancelled", "normal", _registrants),
    scheduling.OccurrenceMoved.type: ("occurrence_moved", "normal", _registrants),
    scheduling.RegistrationCreated.type: ("registration_created", "normal", _member),
    scheduling.RegistrationPromoted.type: ("registration_promoted", "normal", _member),
    scheduling.SessionBooked.type: ("session_booked", "normal", _member_and_leader),
    scheduling.SessionRescheduled.type: ("session_rescheduled", "normal", _member_and_leader),
    scheduling.SessionCancelled.type: ("session_cancelled", "normal", _member_and_leader),
    scheduling.ReminderDue.type: ("reminder", "normal", _the_person),
}
NOTIFIABLE_TYPES = frozenset(PLANS)


def plan_for(event_type: str, data: dict) -> Plan | None:
    """The notification plan for an event, or None when the event tells nobody anything."""
    entry = PLANS.get(event_type)
    if entry is None:
        return None
    template, priority, recipients = entry
    return Plan(template, priority, recipients(data))


# --- consent and channel choice ------------------------------------------------------------------

def consented_channels(consents: list[dict], now: datetime) -> set[str]:
    """Channels a member consented to be notified on (purposes notify:<channel>, not expired)."""
    out = set()
    for consent in consents or []:
        purpose = consent.get("purpose") or ""
        if not purpose.startswith("notify:"):
            continue
        expires = consent.get("expires_at")
        if isinstance(expires, str):
            expires = parse_time(expires)
        if expires is not None and as_utc(expires) <= now:
            continue
        out.add(purpose.removeprefix("notify:"))
    return out


def channels_for(contact: dict | None, kind: str, consents: list[dict] | None, preferences: dict | None,
                 now: datetime) -> list[str]:
    """The channels a person receives this message on.

    - a channel needs an address (email, phone; in-app needs none) from the contact directory;
    - members need consent for the channel (notify:email / notify:sms / notify:inapp); leaders and staff
      are reached for their work by role, and only their own preferences turn a channel off;
    - the person's choice: their preferences when set, else the channels they chose at intake,
      else every channel they can be reached on.
    """
    if contact is None:
        return []
    reachable = {"inapp"}
    if contact.get("email"):
        reachable.add("email")
    if contact.get("phone"):
        reachable.add("sms")
    if kind == "member":
        reachable &= consented_channels(consents or [], now)
    chosen = set(contact.get("channels") or []) or set(CHANNELS)
    if preferences and preferences.get("channels"):
        for channel, on in preferences["channels"].items():
            if on:
                chosen.add(channel)
            else:
                chosen.discard(channel)
    return [c for c in CHANNELS if c in reachable and c in chosen]


# --- quiet hours ---------------------------------------------------------------------------------

def quiet_until(now: datetime, time_zone: str | None, quiet_hours: dict | None) -> datetime | None:
    """When ``now`` falls in the person's quiet hours (local ``start``..``end``, may span midnight),
    the UTC moment they end; otherwise None."""
    if not quiet_hours or not quiet_hours.get("start") or not quiet_hours.get("end"):
        return None
    tz = zone(time_zone)
    local = as_utc(now).astimezone(tz)
    start, end = time(*clock(quiet_hours["start"])), time(*clock(quiet_hours["end"]))
    if start == end:
        return None
    t = local.time()
    if start < end:
        inside = start <= t < end
        end_date = local.date()
    else:  # spans midnight, e.g. 21:00-07:00
        inside = t >= start or t < end
        end_date = local.date() + timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    end_local = datetime.combine(end_date, end, tzinfo=tz)
    return end_local.astimezone(timezone.utc)


def when_to_send(priority: str, now: datetime, time_zone: str | None, preferences: dict | None) -> tuple[str, datetime]:
    """(status, moment): urgent goes now; low priority waits for the digest when the person wants one;
    anything else waits out quiet hours."""
    prefs = preferences or {}
    if priority == "urgent":
        return "pending", now
    if priority == "low" and prefs.get("digest"):
        return "digest", now
    held = quiet_until(now, time_zone, prefs.get("quiet_hours"))
    if held is not None:
        return "held", held
    return "pending", now


def digest_due(now: datetime, time_zone: str | None, local_hour: int, last_sent_local_date: str | None) -> str | None:
    """The person's local date when a digest is due now (once a day, from ``local_hour``), else None."""
    local = as_utc(now).astimezone(zone(time_zone))
    if local.hour < local_hour:
        return None
    today = local.date().isoformat()
    return None if last_sent_local_date == today else today


# --- retries -------------------------------------------------------------------------------------

def retry_delay(attempts: int, base_seconds: float, multiplier: float) -> timedelta:
    """Back-off after ``attempts`` failed tries (1, 2, ...)."""
    return timedelta(seconds=base_seconds * (multiplier ** max(0, attempts - 1)))


def after_failure(attempts: int, max_attempts: int, now: datetime, base: float, multiplier: float) -> tuple[str, datetime | None]:
    """(status, next attempt) after the ``attempts``-th try failed."""
    if attempts >= max_attempts:
        return "failed", None
    return "pending", now + retry_delay(attempts, base, multiplier)


REDACTED = "[redacted]"


def redacted_sign_in(data: dict) -> dict:
    """What the delivery log keeps of a sign-in code event: never the code, the link or the address."""
    return {**{k: v for k, v in data.items() if k not in ("address", "code", "link")},
            "code": REDACTED, "link": REDACTED}


def idempotency_key(source_event_id: str, recipient_id: str, channel: str) -> str:
    return f"{source_event_id}|{recipient_id}|{channel}"


# --- languages -----------------------------------------------------------------------------------

def language_candidates(preferred: str | None, default: str = "en") -> list[str]:
    """'es-MX' -> ['es-mx', 'es', 'en']."""
    out: list[str] = []
    tag = (preferred or "").strip().lower().replace("_", "-")
    while tag:
        if tag not in out:
            out.append(tag)
        tag = tag.rpartition("-")[0]
    if default not in out:
        out.append(default)
    return out


# --- signatures ----------------------------------------------------------------------------------

class _UnsubscribeHmac(HMACAlgorithm):
    """HMAC-SHA256 over ``unsubscribe.<payload>`` with the link secret itself (no key derivation): our own
    rather than itsdangerous' default only so that the links already in people's mailboxes keep working."""

    def __init__(self):
        super().__init__(hashlib.sha256)

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return super().get_signature(key, b"unsubscribe." + value)


def _unsubscribe_signer(secret: str) -> Signer:
    return Signer(secret, key_derivation="none", algorithm=_UnsubscribeHmac())


def sign_unsubscribe(secret: str, organization_id: str, person_id: str, channel: str) -> str:
    """``<payload>.<signature>``: the payload is base64url JSON {"o", "p", "c"}."""
    payload = base64_encode(json.dumps({"o": organization_id, "p": person_id, "c": channel}, separators=(",", ":")))
    return _unsubscribe_signer(secret).sign(payload).decode()


class BadToken(ValueError):
    pass


def verify_unsubscribe(secret: str, token: str) -> dict:
    """{'organization_id', 'person_id', 'channel'} of a token we signed; BadToken otherwise."""
    try:
        data = json.loads(base64_decode(_unsubscribe_signer(secret).unsign(token or "")))
    except BadSignature as exc:
        raise BadToken("bad signature") from exc
    except (BadData, ValueError) as exc:
        raise BadToken("malformed token") from exc
    if not isinstance(data, dict) or data.get("c") not in CHANNELS or not data.get("p") or not data.get("o"):
        raise BadToken("malformed token")
    return {"organization_id": data["o"], "person_id": data["p"], "channel": data["c"]}


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", hex, as sent in X-RecoveryNet-Signature ("sha256=<hex>")."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_webhook_signature(secret: str, timestamp: str, body: bytes, header: str, *, now: datetime,
                             tolerance_seconds: int = 300) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent (no replays)."""
    try:
        sent = datetime.fromtimestamp(int(timestamp), timezone.utc)
    except (ValueError, OverflowError):
        return False
    if abs((as_utc(now) - sent).total_seconds()) > tolerance_seconds:
        return False
    return hmac.compare_digest(webhook_signature(secret, timestamp, body), header or "")


# --- time helpers --------------------------------------------------------------------------------

def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def parse_time(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
