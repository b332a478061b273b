"""Events intake publishes: organizations, sites, members, peer leaders, and the restricted contacts.

No direct identifier (name, email, phone, address of a person, date of birth) appears here except in
``ContactChanged``, which travels only on the restricted CONTACTS topic that notifications alone reads.
Profiles are sent as full snapshots (not diffs), so a consumer's copy is always whole.
"""
from marshmallow import Schema, fields, validate

from shared.events.base import EventSchema, event

ORGANIZATIONS = "recoverynet.intake.organizations"
MEMBERS = "recoverynet.intake.members"
LEADERS = "recoverynet.intake.leaders"
# Restricted and compacted (on real Kafka), keyed by person id; erasure writes a tombstone.
CONTACTS = "recoverynet.intake.contacts"

PERSON_KINDS = ("member", "leader", "staff")
# Who can sign in: the people above, and the platform's operators (no organization).
SIGN_IN_KINDS = PERSON_KINDS + ("operator",)
MEETING_MODES = ("in_person", "virtual", "either")
CO_OCCURRING = ("yes", "no", "prefer_not_to_say")
MEMBER_STATUSES = ("pending_consent", "active", "paused", "discharged", "graduated")
LEADER_STATUSES = ("active", "on_leave", "retired")
# The flags a member's record can hold (MemberRiskFlagged raises "risk"; MemberRiskResolved names the one resolved).
RISK_FLAG = "risk"
MEMBER_FLAGS = (RISK_FLAG,)
CHANNELS = ("email", "sms", "inapp")


class AvailabilityWindow(Schema):  # nested parts are plain schemas: no organization of their own
    """A weekly window in the person's own time zone. day: 0 = Monday ... 6 = Sunday."""

    day = fields.Int(required=True, validate=validate.Range(0, 6))
    start = fields.Str(required=True, metadata={"description": "local time HH:MM"})
    end = fields.Str(required=True, metadata={"description": "local time HH:MM, after start (24:00 allowed)"})


class ConsentInForce(Schema):
    """A consent currently given. Purposes: matching, notify:email, notify:sms, notify:inapp, share:<program>."""

    purpose = fields.Str(required=True)
    expires_at = fields.DateTime(allow_none=True, load_default=None)


class Certification(Schema):
    name = fields.Str(required=True)
    issuer = fields.Str(load_default=None, allow_none=True)
    expires_on = fields.Date(allow_none=True, load_default=None)


class SiteAddress(Schema):
    """A site's (an organization's premises) address: not a person's, so not a direct identifier."""

    street = fields.Str(load_default=None, allow_none=True)
    city = fields.Str(load_default=None, allow_none=True)
    region = fields.Str(load_default=None, allow_none=True)
    postal_code = fields.Str(load_default=None, allow_none=True)
    country = fields.Str(load_default=None, allow_none=True)


# --- organizations and sites -------------------------------------------------------------------

@event("org.recoverynet.intake.organization.created", version=1, topic=ORGANIZATIONS, key="organization_id")
class OrganizationCreated(EventSchema):
    """A platform operator created an organization."""

    name = fields.Str(required=True)
    allows_youth = fields.Bool(load_default=False)
    default_language = fields.Str(load_default="en")


@event("org.recoverynet.intake.site.created", version=1, topic=ORGANIZATIONS, key="organization_id")
class SiteCreated(EventSchema):
    """A site was added. Keyed by organization so an organization's sites stay in order."""

    site_id = fields.Str(required=True)
    name = fields.Str(required=True)
    time_zone = fields.Str(required=True, metadata={"description": "IANA time zone"})
    virtual_only = fields.Bool(required=True)
    location = fields.Nested(SiteAddress, allow_none=True, load_default=None, metadata={"description": "the site's street address (premises, not a person's)"})


@event("org.recoverynet.intake.site.updated", version=1, topic=ORGANIZATIONS, key="organization_id")
class SiteUpdated(SiteCreated):
    """A site's name, time zone, address or virtual-only flag changed (full snapshot)."""


@event("org.recoverynet.intake.coordinator.assigned", version=1, topic=ORGANIZATIONS, key="organization_id")
class CoordinatorAssigned(EventSchema):
    """A staff person coordinates these sites (risk flags and waiting members reach them)."""

    staff_id = fields.Str(required=True)
    site_ids = fields.List(fields.Str(), required=True)


@event("org.recoverynet.intake.person.tokens_revoked", version=1, topic=ORGANIZATIONS, key="organization_id")
class TokensRevoked(EventSchema):
    """A person signed out everywhere (or was deactivated): every service refuses their tokens whose
    version (``ver``) is below ``min_version`` (``subject`` is a person, in whichever organization
    the token is for). An operator, who has no organization, is announced with an empty organization_id."""

    subject = fields.Str(required=True, metadata={"description": "the token's sub (an id, e.g. staff:<id>)"})
    min_version = fields.Int(required=True, validate=validate.Range(min=1),
                             metadata={"description": "tokens with a lower ver are refused"})


# --- members -----------------------------------------------------------------------------------

class MemberSnapshot(EventSchema):
    """What matching, scheduling and notifications need of a member; nothing that names them."""

    member_id = fields.Str(required=True)
    site_id = fields.Str(required=True)
    status = fields.Str(required=True, validate=validate.OneOf(MEMBER_STATUSES))
    time_zone = fields.Str(required=True)
    languages = fields.List(fields.Str(), required=True, metadata={"description": "BCP 47 codes, preferred first"})
    leader_gender_preference = fields.Str(allow_none=True, load_default=None)
    meeting_mode = fields.Str(required=True, validate=validate.OneOf(MEETING_MODES))
    availability = fields.List(fields.Nested(AvailabilityWindow), required=True)
    substances = fields.List(fields.Str(), load_default=list)
    pathways = fields.List(fields.Str(), load_default=list)
    co_occurring_mental_health = fields.Str(load_default="prefer_not_to_say", validate=validate.OneOf(CO_OCCURRING))
    lived_experience_topics = fields.List(fields.Str(), load_default=list)
    contact_channels = fields.List(fields.Str(), load_default=list)
    consents = fields.List(fields.Nested(ConsentInForce), required=True)


@event("org.recoverynet.intake.member.registered", version=1, topic=MEMBERS, key="member_id")
class MemberRegistered(MemberSnapshot):
    """A member was registered at a site."""


@event("org.recoverynet.intake.member.updated", version=1, topic=MEMBERS, key="member_id")
class MemberUpdated(MemberSnapshot):
    """A member's profile, recovery profile or preferences changed (full snapshot)."""


@event("org.recoverynet.intake.member.consent_changed", version=1, topic=MEMBERS, key="member_id")
class MemberConsentChanged(EventSchema):
    """A consent was given or revoked. ``consents`` is the whole set in force afterwards."""

    member_id = fields.Str(required=True)
    site_id = fields.Str(required=True)
    purpose = fields.Str(required=True)
    granted = fields.Bool(required=True)
    expires_at = fields.DateTime(allow_none=True, load_default=None)
    consents = fields.List(fields.Nested(ConsentInForce), required=True)


@event("org.recoverynet.intake.member.status_changed", version=1, topic=MEMBERS, key="member_id")
class MemberStatusChanged(EventSchema):
    member_id = fields.Str(required=True)
    site_id = fields.Str(required=True)
    from_status = fields.Str(required=True, validate=validate.OneOf(MEMBER_STATUSES))
    to_status = fields.Str(required=True, validate=validate.OneOf(MEMBER_STATUSES))
    reason = fields.Str(allow_none=True, load_default=None)


@event("org.recoverynet.intake.member.transferred", version=1, topic=MEMBERS, key="member_id")
class MemberTransferred(EventSchema):
    member_id = fields.Str(required=True)
    from_site_id = fields.Str(required=True)
    to_site_id = fields.Str(required=True)
    time_zone = fields.Str(required=True)


@event("org.recoverynet.intake.member.risk_flagged", version=1, topic=MEMBERS, key="member_id")
class MemberRiskFlagged(EventSchema):
    """A screening showed risk: the site coordinator must be told at once (urgent)."""

    member_id = fields.Str(required=True)
    site_id = fields.Str(required=True)
    screening_id = fields.Str(required=True)
    instrument = fields.Str(required=True, metadata={"description": "BARC-10, AUDIT-C, DAST-10 or PHQ-2"})
    band = fields.Str(required=True)
    reason = fields.Str(required=True, metadata={"description": "why it is flagged, e.g. 'PHQ-2 positive screen'"})


@event("org.recoverynet.intake.member.screening_recorded", version=1, topic=MEMBERS, key="member_id")
class ScreeningRecorded(EventSchema):
    member_id = fields.Str(required=True)
    site_id = fields.Str(required=True)
    screening_id = fields.Str(required=True)
    instrument = fields.Str(required=True)
    total = fields.Int(required=True)
    band = fields.Str(required=True)
    flagged = fields.Bool(required=True)


@event("org.recoverynet.intake.member.risk_resolved", version=1, topic=MEMBERS, key="member_id")
class MemberRiskResolved(EventSchema):
    """A coordinator resolved the member's open flag (raised by MemberRiskFlagged)."""

    member_id = fields.Str(required=True)
    site_id = fields.Str(required=True)
    flag = fields.Str(required=True, metadata={"description": "the flag resolved, e.g. 'risk'"})


@event("org.recoverynet.intake.member.erased", version=1, topic=MEMBERS, key="member_id")
class MemberErased(EventSchema):
    """The member asked for erasure: every service removes or anonymizes its copy."""

    member_id = fields.Str(required=True)
    site_id = fields.Str(allow_none=True, load_default=None)


# --- peer leaders ------------------------------------------------------------------------------

class LeaderSnapshot(EventSchema):
    leader_id = fields.Str(required=True)
    site_ids = fields.List(fields.Str(), required=True)
    status = fields.Str(required=True, validate=validate.OneOf(LEADER_STATUSES))
    time_zone = fields.Str(required=True)
    languages = fields.List(fields.Str(), required=True)
    gender = fields.Str(allow_none=True, load_default=None)
    meets_virtually = fields.Bool(required=True)
    availability = fields.List(fields.Nested(AvailabilityWindow), required=True)
    capacity = fields.Int(required=True, validate=validate.Range(min=0))
    substances = fields.List(fields.Str(), load_default=list, metadata={"description": "lived experience"})
    pathways = fields.List(fields.Str(), load_default=list)
    lived_experience_areas = fields.List(fields.Str(), load_default=list)
    co_occurring_mental_health_experience = fields.Bool(load_default=False)
    certifications = fields.List(fields.Nested(Certification), load_default=list)
    # Added in v1 (additive: consumers ignore it until they read it; absent means not stretched).
    stretched = fields.Bool(load_default=False, metadata={
        "description": "the leader says they are stretched: no new proposals to them until it is lifted "
                       "(their own matches go on); absent: false"})
    stretched_since = fields.DateTime(allow_none=True, load_default=None, metadata={
        "description": "when the leader said so (null when not stretched)"})


@event("org.recoverynet.intake.leader.registered", version=1, topic=LEADERS, key="leader_id")
class LeaderRegistered(LeaderSnapshot):
    """A peer leader joined."""


@event("org.recoverynet.intake.leader.updated", version=1, topic=LEADERS, key="leader_id")
class LeaderUpdated(LeaderSnapshot):
    """A leader's profile changed (full snapshot, including certifications)."""


@event("org.recoverynet.intake.leader.capacity_changed", version=1, topic=LEADERS, key="leader_id")
class LeaderCapacityChanged(EventSchema):
    leader_id = fields.Str(required=True)
    capacity = fields.Int(required=True, validate=validate.Range(min=0))


@event("org.recoverynet.intake.leader.availability_changed", version=1, topic=LEADERS, key="leader_id")
class LeaderAvailabilityChanged(EventSchema):
    leader_id = fields.Str(required=True)
    time_zone = fields.Str(required=True)
    availability = fields.List(fields.Nested(AvailabilityWindow), required=True)


@event("org.recoverynet.intake.leader.deactivated", version=1, topic=LEADERS, key="leader_id")
class LeaderDeactivated(EventSchema):
    """A leader went on leave or retired: their members need someone else."""

    leader_id = fields.Str(required=True)
    to_status = fields.Str(required=True, validate=validate.OneOf(("on_leave", "retired")))
    reason = fields.Str(allow_none=True, load_default=None)


@event("org.recoverynet.intake.leader.reactivated", version=1, topic=LEADERS, key="leader_id")
class LeaderReactivated(EventSchema):
    """A leader is back from leave."""

    leader_id = fields.Str(required=True)


@event("org.recoverynet.intake.leader.stretched", version=1, topic=LEADERS, key="leader_id")
class LeaderStretched(EventSchema):
    """A peer leader said they are stretched: a private signal to the coordinators of their sites (new
    proposals to them pause until it is lifted). The leader's note to their coordinator stays in intake."""

    leader_id = fields.Str(required=True)
    site_ids = fields.List(fields.Str(), required=True)
    since = fields.DateTime(required=True)


@event("org.recoverynet.intake.leader.stretch_lifted", version=1, topic=LEADERS, key="leader_id")
class LeaderStretchLifted(EventSchema):
    """The pause on new proposals to a peer leader was lifted, by the leader themself or by staff."""

    leader_id = fields.Str(required=True)
    site_ids = fields.List(fields.Str(), required=True)
    since = fields.DateTime(allow_none=True, load_default=None, metadata={"description": "when it had begun"})
    lifted_by_role = fields.Str(required=True, validate=validate.OneOf(("leader", "coordinator", "admin")))


# --- restricted: contact details ---------------------------------------------------------------

@event("org.recoverynet.intake.contact.changed", version=1, topic=CONTACTS, key="person_id", restricted=True)
class ContactChanged(EventSchema):
    """How to reach a person. Only on the restricted CONTACTS topic; only notifications reads it."""

    person_id = fields.Str(required=True)
    person_kind = fields.Str(required=True, validate=validate.OneOf(PERSON_KINDS))
    display_name = fields.Str(required=True, metadata={"description": "preferred name, for greetings"})
    email = fields.Str(allow_none=True, load_default=None)
    phone = fields.Str(allow_none=True, load_default=None, metadata={"description": "E.164"})
    preferred_language = fields.Str(load_default="en")
    time_zone = fields.Str(required=True)
    site_ids = fields.List(fields.Str(), load_default=list)
    channels = fields.List(fields.Str(), load_default=list, metadata={"description": "channels the person chose"})


@event("org.recoverynet.intake.signin.code_issued", version=1, topic=CONTACTS, key="person_id", restricted=True)
class SignInCodeIssued(EventSchema):
    """Someone asked to sign in (or an admin invited a staff member): send this one-time code at once.

    Only on the restricted CONTACTS topic (it carries the address and the code itself); only
    notifications reads it, sends it (urgent: no quiet hours, no digest, no notify consent needed) and
    keeps it only until it is sent. ``organization_id`` is the first organization the code signs in to
    (empty for a platform operator); ``person_id`` the first person it can sign in as."""

    person_id = fields.Str(required=True)
    person_kind = fields.Str(required=True, validate=validate.OneOf(SIGN_IN_KINDS))
    channel = fields.Str(required=True, validate=validate.OneOf(("email", "sms")))
    address = fields.Str(required=True, metadata={"description": "the email address or E.164 phone to send to"})
    code = fields.Str(required=True, metadata={"description": "the short code the person types"})
    link = fields.Str(required=True, metadata={"description": "the console's sign-in callback with the link token"})
    expires_at = fields.DateTime(required=True)
    language = fields.Str(load_default="en", metadata={"description": "BCP 47 tag of the message's language"})
    purpose = fields.Str(load_default="sign_in", validate=validate.OneOf(("sign_in", "invitation")),
                         metadata={"description": "invitation: an admin invited a staff member"})
    role = fields.Str(allow_none=True, load_default=None,
                      metadata={"description": "for an invitation: the role the person is invited as"})
