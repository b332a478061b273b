"""Use cases of notifications, one module per aggregate, each run in a unit of work (or on a Store
reader, for reads) that an entry point opens: the HTTP view (api.py), the consumer, a job.

  preferences.py         a person's channel choices, quiet hours, digest; who coordinates a site
  inbox.py               the in-app inbox
  members.py             a member's export (everything held about them)
  webhooks.py            organizations' endpoints
  template_overrides.py  organizations' wording overrides and previews
  delivery_log.py        the delivery log, and sending a failed delivery again
  unsubscribe.py         the signed link in every email
  events.py              handlers of subscribed events: the directory, and events -> planned deliveries
  delivery.py            the delivery job (Deliverer): claim, send once, record the outcome
  jobs.py                the other periodic work: releasing held messages, daily digests

The names below are the ones the worker and the tests reach through the package.
"""
from notifications.handlers.delivery import Deliverer
from notifications.handlers.events import (on_contact_changed, on_coordinator_assigned, on_meeting_snapshot,
                                           on_member_erased, on_member_snapshot, on_notifiable_event,
                                           on_organization_created, on_site_changed)
from notifications.handlers.jobs import release_held, run_digests

__all__ = ["Deliverer", "on_contact_changed", "on_coordinator_assigned", "on_meeting_snapshot", "on_member_erased",
           "on_member_snapshot", "on_notifiable_event", "on_organization_created", "on_site_changed",
           "release_held", "run_digests"]
