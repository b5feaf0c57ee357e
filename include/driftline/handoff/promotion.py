"""An imported candidate judged exactly like a retrained one: the declared retrain_model steps
(pipelines.RETRAIN_MODEL) from validate_candidate on (fair shared holdout, guardrails, appended to
model_evaluations; the approval rule; decide_promotion; retention; realized performance)."""

from __future__ import annotations

from typing import Any


def judge_candidate(config_path: str, candidate: dict, reason: str, run_id: str, actor: str) -> dict:
    """The validation and decision of an imported, registered candidate; with retraining.promotion =
    "manual" a candidate that passed waits for a reviewer (decision "awaiting_approval")."""
    from driftline.pipelines import run_retrain_model
    from driftline.retraining.errors import RetrainingError

    results: dict[str, Any] = {}

    def keep(step: str, result: Any) -> None:
        results[step] = result

    try:
        run_retrain_model(config_path, reason, (None, None), None, None, run_id, actor, keep, candidate=candidate)
    except RetrainingError:
        if results.get("request_approval") is None:  # not the reviewer's stop: a real failure
            raise
        return {
            "decision": "awaiting_approval",
            "evaluation_id": results["validate_candidate"]["evaluation_id"],
            "reason": "retraining.promotion is manual: the candidate passed every guardrail and waits for a reviewer",
        }
    validation, decision = results["validate_candidate"], results["decide_promotion"]
    return {
        "decision": decision["decision"],
        "champion_version": decision["champion_version"],
        "evaluation_id": validation["evaluation_id"],
        "reason": decision["reason"],
    }
