"""TEMPORARY stand-in in H4's branch so the adapter runs before merge: H3's drift/decision.py replaces it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetrainState:
    """What Airflow says about the retrain DAG when the decision is taken."""

    dag_id: str
    deployed: bool
    paused: bool
    running: int
    queued: int


def decide_retrain(config_path: str, interval_start, interval_end, run_id: str, state: RetrainState, now=None) -> dict:
    """The decision dict of the contract (decision_id, breach, trigger, reason, retrain_run_id, interval, report_path, numbers)."""
    from driftline import drift

    decision = drift.decide_retrain(
        config_path, interval_start, interval_end, run_id, state.running, state.deployed, now,
        queued_retrain_runs=state.queued, retrain_paused=state.paused,
    )
    conf = decision.pop("retrain_conf")
    numbers = {k: conf[k] for k in ("drifted_share", "prediction_drift", "drifted_features", "model_version")}
    return {**decision, "interval": conf["interval"], "report_path": conf["report_path"], "numbers": numbers}
