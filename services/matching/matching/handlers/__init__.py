"""Matching's use cases, one module per aggregate; only the entry points open a unit of work.

  proposals   propose the best leader for a member (or waitlist them), re-match the waitlist, candidates
  members     a member's own view: their current match, their export
  matches     a match's lifecycle: accept, decline, expire, end, a different leader; re-checks
  overrides   coordinators' pins and blocks
  settings    the organization's weights and timings (its matching policy)
  batch_runs  start a batch run; plan it and write it in chunks
  events      intake's events kept in the read model (the only module ``subscriptions`` imports)
  jobs        periodic work, each an entry point: expiry, lapses, waiting alerts, batch runs
"""
