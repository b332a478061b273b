"""Reporting's use cases: ``events`` keeps the per-member facts from subscribed events; ``reports``
computes the outcome report for a caller; ``rebuild`` replays the topics into an empty database."""
