"""An imported candidate judged exactly like a retrained one: validate_candidate (fair shared
holdout, guardrails, appended to model_evaluations), then the approval rule and decide_promotion."""

from __future__ import annotations


def judge_candidate(config_path: str, candidate: dict, reason: str, run_id: str) -> dict:
    """The validation and decision of an imported candidate; with retraining.promotion = "manual" a
    candidate that passed waits for a reviewer (decision "awaiting_approval")."""
    from driftline.retraining.lifecycle import decide_promotion, validate_candidate
    from driftline.retraining.review import approval_request

    validation = validate_candidate(config_path, candidate, run_id)
    if approval_request(config_path, validation) is not None:
        return {
            "decision": "awaiting_approval",
            "evaluation_id": validation["evaluation_id"],
            "reason": "retraining.promotion is manual: the candidate passed every guardrail and waits for a reviewer",
        }
    decision = decide_promotion(config_path, validation, reason, run_id)
    return {
        "decision": decision["decision"],
        "champion_version": decision["champion_version"],
        "evaluation_id": validation["evaluation_id"],
        "reason": decision["reason"],
    }
