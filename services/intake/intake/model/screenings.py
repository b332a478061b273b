"""Screenings scored (BARC-10, AUDIT-C, DAST-10, PHQ-2) with their risk flags, and the plan's revisions."""
from __future__ import annotations

from datetime import datetime

from intake.model.vocabularies import _err


# --- screenings --------------------------------------------------------------------------------

INSTRUMENTS = ("BARC-10", "AUDIT-C", "DAST-10", "PHQ-2")


def _check_items(answers: list, count: int, low: int, high: int) -> list[int]:
    if not isinstance(answers, list) or len(answers) != count:
        raise _err("answers", f"Expected {count} answers, got {len(answers) if isinstance(answers, list) else 'none'}.")
    out = []
    for i, a in enumerate(answers):
        if isinstance(a, bool):
            a = int(a)
        if not isinstance(a, int) or not low <= a <= high:
            raise _err("answers", f"Answer {i + 1} must be a whole number from {low} to {high}.")
        out.append(a)
    return out


def score_screening(instrument: str, answers: list) -> dict:
    """Score a screening from its item answers. Returns total, band, flagged and reason.

    BARC-10 (Vilsaint et al. 2017): 10 items 1-6, total 10-60; 47 or more is the recovery-capital
      threshold linked to sustained remission. Bands: low 10-29, moderate 30-46, strong 47-60.
    AUDIT-C: 3 items 0-4, total 0-12. Bands: low 0-3, moderate 4-5, high 6-7, severe 8-12.
    DAST-10: 10 yes/no items (1 = yes, 0 = no); item 3 ("always able to stop?") is reverse scored.
      Total 0-10. Bands: none 0, low 1-2, moderate 3-5, substantial 6-8, severe 9-10.
    PHQ-2: 2 items 0-3, total 0-6; 3 or more is a positive screen for depression.
    A positive PHQ-2 or a severe band raises a risk flag for the site coordinator.
    """
    if instrument == "BARC-10":
        items = _check_items(answers, 10, 1, 6)
        total = sum(items)
        band = "low" if total < 30 else "moderate" if total < 47 else "strong"
    elif instrument == "AUDIT-C":
        items = _check_items(answers, 3, 0, 4)
        total = sum(items)
        band = "low" if total <= 3 else "moderate" if total <= 5 else "high" if total <= 7 else "severe"
    elif instrument == "DAST-10":
        items = _check_items(answers, 10, 0, 1)
        total = sum(1 - a if i == 2 else a for i, a in enumerate(items))
        band = ("none" if total == 0 else "low" if total <= 2 else "moderate" if total <= 5
                else "substantial" if total <= 8 else "severe")
    elif instrument == "PHQ-2":
        items = _check_items(answers, 2, 0, 3)
        total = sum(items)
        band = "positive" if total >= 3 else "negative"
    else:
        raise _err("instrument", f"{instrument!r} is not an instrument ({', '.join(INSTRUMENTS)}).")
    reason = None
    if instrument == "PHQ-2" and band == "positive":
        reason = "PHQ-2 positive screen"
    elif band == "severe":
        reason = f"{instrument} severe band"
    return {"instrument": instrument, "answers": items, "total": total, "band": band,
            "flagged": reason is not None, "reason": reason}


# --- plans -------------------------------------------------------------------------------------


def revise_plan(current: dict | None, goal: str, next_steps: list[str], *, by: str, at: datetime) -> dict:
    goal = (goal or "").strip()
    if not goal:
        raise _err("goal", "A whole-health goal is required.")
    steps = [s.strip() for s in next_steps if isinstance(s, str) and s.strip()]
    revision = (current or {}).get("revision", 0) + 1
    # A new revision is the member's to share again: its goal is not shown to the leader until they do.
    return {"goal": goal, "next_steps": steps, "revision": revision, "updated_by": by, "updated_at": at,
            "shared_with_leader": False}
