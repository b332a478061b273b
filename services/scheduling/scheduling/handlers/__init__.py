"""Scheduling's use cases, one module per aggregate, plus the handlers of subscribed events and the
periodic jobs:

  meetings       recurring meetings: create, change, cancel, list; loading one and its occurrences
  occurrences    one occurrence: list, cancel, move; attendance
  registrations  seats and the waitlist
  sessions       one-on-one sessions of a match and the times suggested for them
  busy           when a leader or member is taken (meetings and sessions), and the clash refusals
  reminders      which reminders are due, and sending them in a unit of work
  feeds          the public and personal feeds, and personal feed tokens
  members        a member's own view: their registrations, suggested times, export
  events         handlers of the events in ``subscriptions.py``
  jobs           periodic work (an entry point: it opens its own units of work)

A use case receives a unit of work (``uow``; its store is ``Store.of(uow)``) or, for a pure read, a
``Store`` reader; only entry points (the HTTP view, the consumer, a job) open the transaction. Rules come
from ``model``, permissions from ``access``; errors are ``shared.errors`` domain errors.
"""
