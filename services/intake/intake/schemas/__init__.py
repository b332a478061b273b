"""HTTP bodies and queries of the intake API (marshmallow). The rules of one field that JSON Schema can say
are stated here too, so the OpenAPI document says them (issue 13): IANA time zones, BCP 47 tags, E.164
phones, channels, HH:MM times, email syntax. The rules themselves (and those across fields: an email or
a phone, an address unless virtual, an end after its start) live in ``model``, which the HTTP API and the
bulk import share.

One module per area, every name re-exported here (``from intake import schemas; schemas.X`` keeps working):

  common         one-field rules as the document states them, the strict base schema
  organizations  organizations, sites, staff
  signin         signing in and tokens
  people         members and leaders
  care           a member's consents, screenings and plan
  imports        bulk import and the audit log
"""
from intake.schemas.common import (HHMM_END_PATTERN, HHMM_PATTERN, LEADER_BIO_MAX, NAME, PHONE_PATTERN,
                                   TIME_ZONE_PATTERN, aware_dt, channels_field, email_field, language_field,
                                   phone_field, Str, StrictSchema, time_zone_field)
from intake.schemas.organizations import (AddressSchema, OrganizationIn, OrganizationOut, OrganizationPatch,
                                          SelfServiceSchema, SiteIn, SiteOut, SitePatch, StaffIn, StaffInvitationIn,
                                          StaffOut, StaffPatch)
from intake.schemas.signin import (SIGN_IN_ROLES, ChooseOrganizationProblem, JwksOut, PublicJwk, SignedOutOut,
                                   SignInAcceptedOut, SignInChoiceOut, SignInIn, SignInTokenIn, SignInTokenOut,
                                   TokenIn, TokenOut)
from intake.schemas.care import (_consent_purpose, _messages, ConsentGrantIn, ConsentOut, PlanIn, PlanOut,
                                 ScreeningIn, ScreeningOut, ScreeningQuery)
from intake.schemas.people import (CertificationSchema, ErasureIn, ErasureOut, LeaderIn, LeaderOut, LeaderPatch,
                                   LeaderQuery, LeaderStatusIn, MemberIn, MemberOut, MemberPatch, MemberQuery,
                                   MemberReadOut, MemberReadQuery, MEMBER_FIELDS_SHOWN, MEMBER_INCLUDES,
                                   INCLUDED_SCREENINGS,
                                   MemberStatusIn, PersonFields, PersonOut, StatusIn, StretchedIn, StretchedOut,
                                   TransferIn, WindowSchema)
from intake.schemas.imports import (CSV_COLUMNS, CSV_HEADER_PATTERN, CSV_LIST_COLUMNS, DAYS, IMPORT_FORMATS,
                                    IMPORT_REQUEST_BODY, WINDOW_RE, _key, _split, _windows, AuditOut, AuditQuery,
                                    csv_row_to_member, ImportOut, ImportRowOut, load_import_row, parse_import,
                                    RowError)
