"""What each page concludes, computed before it is drawn: a drift report's decision, and where every
evaluated candidate stands (promoted, rejected, or still waiting for a reviewer). Pure functions on
the rows the queries return, so the pages can say the conclusion first and the tests need no database."""

from __future__ import annotations

from typing import Any

from driftline.airflow.ui.numbers import metric
from driftline.drift.summary import why


def drift_decision(summary: dict[str, Any]) -> dict[str, Any]:
    """The decision of one monitored interval: headline, css class and the reason it gives."""
    if summary.get("reason") is None:
        return {"headline": "Not decided yet", "css": "muted", "reason": "monitor_drift's decide_retrain records it"}
    breach = "breach" if summary.get("breach") else "no breach"
    if summary.get("trigger"):
        return {"headline": f"Retrain triggered ({breach})", "css": "yes", "reason": summary["reason"]}
    return {"headline": f"No retrain ({breach})", "css": "no", "reason": summary["reason"]}


def feature_why(feature: dict[str, Any], floor: float | None) -> str:
    """Why a feature counts as drift for the policy, or why not, in the pages' number format."""
    return why(feature, floor, metric)


def evaluation_states(
    versions: list[dict[str, Any]], evaluations: list[dict[str, Any]], promotion: str
) -> list[dict[str, Any]]:
    """Each evaluation with `state` (what became of its candidate) and `css`: a passed candidate whose
    version is still a candidate has no decision yet, so it is waiting for approval (promotion =
    "manual") or for the promotion step, never simply "passed"."""
    status = {v["version"]: (v["status"], v.get("pruned_at")) for v in versions}
    # Evaluations arrive newest first: only a candidate's newest evaluation can still be waiting.
    newest: set[int] = set()
    out = []
    for e in evaluations:
        version_status, pruned = status.get(e["candidate_version"], (None, None))
        latest = e["candidate_version"] not in newest
        newest.add(e["candidate_version"])
        if not e["passed"]:
            state, css = "failed", "yes"
        elif version_status == "candidate" and latest and pruned is None:
            waiting = "waiting for approval" if promotion == "manual" else "waiting for the promotion step"
            state, css = f"passed, {waiting}", "waiting"
        elif version_status in ("champion", "archived"):
            state, css = "passed, promoted", "no"
        elif version_status == "rejected":
            state, css = "passed, then rejected (see the promotion history)", "muted"
        else:
            state, css = "passed, superseded", "muted"
        out.append({**e, "state": state, "css": css})
    return out


def waiting_candidates(evaluations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The evaluations (from evaluation_states) whose candidate still waits for a decision."""
    return [e for e in evaluations if e["css"] == "waiting"]
