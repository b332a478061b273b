"""The organization's matching policy: score weights and timings (read by every proposal, set by admins)."""
from __future__ import annotations

from typing import Any

from shared.errors import Invalid
from shared.unit_of_work import UnitOfWork

from matching import model
from matching.repository import Store

DEFAULT_PROPOSAL_TTL_HOURS = 72.0
DEFAULT_WAITLIST_ALERT_DAYS = 14


def policy(st: Store, org: str) -> dict[str, Any]:
    doc = st.org_settings(org)
    return {
        "weights": model.normalise_weights(doc.get("weights")),
        "raw_weights": {**model.DEFAULT_WEIGHTS, **(doc.get("weights") or {})},
        "proposal_ttl_hours": float(doc.get("proposal_ttl_hours") or DEFAULT_PROPOSAL_TTL_HOURS),
        "waitlist_alert_days": int(doc.get("waitlist_alert_days") or DEFAULT_WAITLIST_ALERT_DAYS),
        "version": doc.get("version", 0),
    }


def current(st: Store, org: str) -> tuple[dict, int]:
    """The settings as the API shows them (weights as given and as points out of 100), and their version."""
    pol = policy(st, org)
    body = {"weights": pol["raw_weights"], "points": pol["weights"], "proposal_ttl_hours": pol["proposal_ttl_hours"],
            "waitlist_alert_days": pol["waitlist_alert_days"]}
    return body, pol["version"]


def save_settings(uow: UnitOfWork, org: str, changes: dict, expected_version: int) -> dict:
    st = Store.of(uow)
    current_doc = st.org_settings(org)
    weights = {**(current_doc.get("weights") or {}), **(changes.get("weights") or {})}
    try:
        model.normalise_weights(weights)
    except model.InvalidWeights as exc:
        raise Invalid({f"weights.{k}" if k in model.PARTS or k != "weights" else k: v for k, v in exc.errors.items()})
    fields = {"weights": weights}
    for name in ("proposal_ttl_hours", "waitlist_alert_days"):
        if changes.get(name) is not None:
            fields[name] = changes[name]
    return st.save_org_settings(org, fields, expected_version)
