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
            "approve_with": approval_command(config_path, candidate["version"]),
        }
    validation, decision = results["validate_candidate"], results["decide_promotion"]
    return {
        "decision": decision["decision"],
        "champion_version": decision["champion_version"],
        "evaluation_id": validation["evaluation_id"],
        "reason": decision["reason"],
    }


def approval_command(config_path: str, version: int) -> str:
    """The command that asks a reviewer about candidate `version` in Airflow: retrain_model judges it
    again (conf candidate_version, no training) and waits at approve_promotion (Required actions)."""
    import json
    import shlex

    from driftline.config import load_config
    from driftline.pipelines import RETRAIN_MODEL, dag_id

    conf = {"reason": f"approve imported candidate v{version}", "candidate_version": version}
    name = dag_id(load_config(config_path).name, RETRAIN_MODEL.name)
    return f"airflow dags trigger {name} --conf {shlex.quote(json.dumps(conf))}"
