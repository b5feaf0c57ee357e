"""Every DAG file imports cleanly, parses fast, and does no heavy or database work at parse time."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
HEAVY_MODULES = [
    "pandas",
    "numpy",
    "pyarrow",
    "psycopg",
    "psycopg2",
    "lightgbm",
    "sklearn",
    "great_expectations",
    "evidently",
]

# Runs in a fresh interpreter: import the framework first (its cost is not the DAG's), then time
# only the DAG module's execution and list what it pulled in. The standard provider's trigger
# operator counts as framework: it imports airflow.models, which a DAG processor has loaded anyway.
PARSE_PROBE = r"""
import importlib.util, json, sys, time
import airflow.sdk, driftline.config
import airflow.providers.standard.operators.trigger_dagrun
path = sys.argv[1]
before = set(sys.modules)
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("dag_under_test", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "new_modules": sorted(set(sys.modules) - before)}))
"""


# One line per DAG: DAG id = file name.
EXPECTED_DAGS = {
    "score_batch",
    "retrain_model",
    "monitor_drift",
}


@pytest.fixture(scope="module")
def dag_bag():
    """Every DAG file of dags/, parsed once by Airflow's own loader (as the dag-processor does)."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dag_files_exist():
    assert {p.stem for p in DAG_FILES} == EXPECTED_DAGS


def test_dagbag_has_no_import_errors(dag_bag):
    assert dag_bag.import_errors == {}
    assert set(dag_bag.dag_ids) == EXPECTED_DAGS


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_parse_is_fast_and_light(dag_file):
    # An unreachable database: if parsing touched it, it would hang or fail.
    env = {**os.environ, "DRIFTLINE_DB_URL": "postgresql://nobody@127.0.0.1:1/none"}
    out = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(dag_file)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = [m for m in probe["new_modules"] if m.split(".")[0] in HEAVY_MODULES]
    assert heavy == [], f"{dag_file.name} imports heavy modules at parse time: {heavy[:10]}"
    assert probe["seconds"] < 0.5, f"{dag_file.name} took {probe['seconds']:.2f} s to parse"


def test_score_batch_contract(dag_bag):
    from airflow.sdk.definitions.param import ParamValidationError

    dag = dag_bag.dags["score_batch"]
    assert [t.task_id for t in dag.topological_sort()][:2] == ["prepare_database", "plan_partitions"]
    # Two paths from the plan: one task for a small interval, mapped partitions + publish for a large one.
    assert dag.get_task("plan_partitions").downstream_task_ids == {
        "score_interval",
        "score_partition",
        "publish_partitions",
    }
    assert dag.get_task("score_partition").downstream_task_ids == {"publish_partitions"}
    assert dag.get_task("score_interval").downstream_task_ids == {"announce_predictions", "score_shadow"}
    assert dag.get_task("publish_partitions").downstream_task_ids == {"announce_predictions"}
    assert dag.get_task("announce_predictions").trigger_rule == "none_failed_min_one_success"
    assert dag.get_task("announce_predictions").downstream_task_ids == {"update_realized_performance"}
    # A real data interval (not the zero-width one of schedule="@daily").
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.catchup is False
    score = dag.get_task("score_interval")
    assert score.retries >= 1 and score.retry_exponential_backoff
    publish = dag.get_task("announce_predictions")
    assert [outlet.name for outlet in publish.outlets] == ["driftline.demo_transactions.predictions"]
    # Params are typed: a pinned version must be an integer.
    model_version = dag.params.get_param("model_version")
    assert model_version.resolve(3) == 3
    assert model_version.resolve(None) is None
    with pytest.raises(ParamValidationError):
        model_version.resolve("latest")
    with pytest.raises(ParamValidationError):
        model_version.resolve(0)


def test_every_task_alerts_on_failure_and_score_batch_has_a_deadline(dag_bag):
    from driftline.airflow.notifiers import DriftlineAlertNotifier

    assert set(dag_bag.dags) == EXPECTED_DAGS
    for dag in dag_bag.dags.values():
        for task in dag.tasks:
            callbacks = task.on_failure_callback or []
            assert any(isinstance(c, DriftlineAlertNotifier) for c in callbacks), f"{dag.dag_id}.{task.task_id}"
    [deadline] = dag_bag.dags["score_batch"].deadline
    assert deadline.callback.path == "driftline.airflow.notifiers.scoring_deadline_missed"
    assert deadline.interval.total_seconds() == (24 + 6) * 3600  # a day's interval + [alerts] 6 h


def test_retrain_model_contract(dag_bag):
    from airflow.sdk.definitions.param import ParamValidationError

    dag = dag_bag.dags["retrain_model"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # triggered by monitor_drift or by hand
    assert dag.max_active_runs == 1
    assert dag.get_task("choose_action").downstream_task_ids == {"train_candidate", "rollback_champion"}
    assert dag.get_task("validate_candidate").downstream_task_ids == {"decide_promotion", "request_approval"}
    # promotion = "manual": request_approval (a short circuit, only the next task) -> the HITL
    # ApprovalOperator -> approved; decide_promotion runs after a reject too, and records it.
    assert type(dag.get_task("request_approval")).__name__ == "_ShortCircuitDecoratedOperator"
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    approval = dag.get_task("approve_promotion")
    assert isinstance(approval, ApprovalOperator)
    assert approval.defaults == ["Reject"] and approval.response_timeout.total_seconds() == 72 * 3600
    assert set(approval.params) == {"comment"}  # only the reviewer's field, not the DAG's Params
    assert approval.downstream_task_ids == {"approved"}
    assert dag.get_task("decide_promotion").upstream_task_ids == {"approved", "validate_candidate"}
    assert dag.get_task("decide_promotion").trigger_rule == "none_failed_min_one_success"
    assert dag.get_task("apply_retention").upstream_task_ids == {"decide_promotion", "rollback_champion"}
    assert dag.get_task("apply_retention").trigger_rule == "none_failed_min_one_success"
    assert dag.get_task("update_realized_performance").upstream_task_ids == {"apply_retention"}
    # A decision moves the champion: a failed one is looked at by a person, not retried blindly.
    assert dag.get_task("decide_promotion").retries == 0 and dag.get_task("rollback_champion").retries == 0
    assert set(dag.params) >= {
        "reason",
        "action",
        "rollback_to_version",
        "training_window_start",
        "training_window_end",
    }
    assert dag.params.get_param("action").resolve("rollback") == "rollback"
    for name, bad in [
        ("action", "explode"),
        ("rollback_to_version", "latest"),
        ("rollback_to_version", 0),
        ("reason", ""),
    ]:
        with pytest.raises(ParamValidationError):
            dag.params.get_param(name).resolve(bad)
    params = copy.deepcopy(dag.params)
    with pytest.raises(ParamValidationError, match="reason"):
        params.validate()  # every run must say why


def test_monitor_drift_contract(dag_bag):
    dag = dag_bag.dags["monitor_drift"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "prepare_database",
        "choose_interval",
        "monitor_interval",
        "estimate_performance",
        "decide_retrain",
        "check_trigger",
        "trigger_retrain",
    ]
    # Data-aware: one run per interval score_batch publishes (the partition key of its Asset event).
    from driftline.airflow.dag_defaults import predictions_asset
    from driftline.config import default_config_path, load_config

    assert type(dag.timetable).__name__ == "PartitionedAssetTimetable"
    assert dag.timetable.asset_condition == predictions_asset(load_config(default_config_path()))
    assert dag.max_active_runs == 1  # k-of-n decisions read the previous intervals
    # No retry-polling: a run starts only once its interval is published.
    assert all(task.retries <= 1 for task in dag.tasks), {t.task_id: t.retries for t in dag.tasks}
    assert {"interval_start", "interval_end"} <= set(dag.params)  # manual runs name their interval
    trigger = dag.get_task("trigger_retrain")
    assert type(trigger).__name__ == "TriggerDagRunOperator"
    assert trigger.trigger_dag_id == "retrain_model"
    assert trigger.skip_when_already_exists
    # Runs only when check_trigger (a short circuit on the decision) lets it; conf comes from decide_retrain.
    assert {t.task_id for t in trigger.upstream_list} == {"check_trigger", "decide_retrain"}
    assert type(dag.get_task("check_trigger")).__name__ == "_ShortCircuitDecoratedOperator"
    # A skipped estimate (regression, uncalibrated model) still lets the drift decision run.
    assert dag.get_task("decide_retrain").trigger_rule == "none_failed"
