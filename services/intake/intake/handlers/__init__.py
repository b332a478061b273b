"""Intake's use cases, one module per aggregate, each use case one function.

A use case receives the unit of work its entry point opened (``def register(uow, principal, data)``,
binding intake's store with ``Store.of(uow)``) or a ``Store`` reader for plain reads; it reads what it
needs, applies ``model`` rules and ``access`` checks, and writes state, the audit entry and the events
it causes together. Only entry points open transactions: the HTTP views (api.py) and the periodic jobs
(jobs.py). A domain error (``shared.errors``) aborts the transaction; the app answers it as problem+json.

    organizations   organizations, sites, staff (coordinators) and their tokens; the audit log
    members         registration, profile, lifecycle, transfer, erasure
    consents        grants, revocations and their history (and what each announces)
    screenings      screenings, risk flags and person-centred plans
    leaders         peer leaders
    imports         bulk import of a site's members
    identities      duplicate detection: one person per email / phone / external id
    events          handlers of subscribed events: matching's matches, kept in the matches read model
    me              self-service: what a member, a leader or a staff member sees and changes of their own
    tokens          the token signing key, its JWKS, token versions and sign-out-everywhere
    jobs            periodic work of the worker: announcing expired consents
"""
from intake.handlers import (  # noqa: F401  (the package is the map above)
    consents,
    identities,
    imports,
    jobs,
    tokens,
    leaders,
    me,
    members,
    organizations,
    screenings,
)
