"""What the DAG files call: one function per task, with Airflow-facing error handling.

Expected bad input fails the task without retries (retrying cannot fix the file); transient
problems (database unreachable, input not landed yet) raise normally so Airflow retries them.
"""

from __future__ import annotations

from datetime import datetime


def _fail_without_retry(exc: Exception):
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(f"{type(exc).__name__}: {exc}")


def prepare_database(config_path: str) -> str:
    from .pipeline import prepare_database as prepare

    return prepare(config_path)


def score_interval(
    config_path: str,
    interval_start: datetime,
    interval_end: datetime,
    run_id: str,
    model_version: int | None,
    partitions: list[dict],
) -> dict:
    """The single-task path; skipped (visible in the UI) when the interval is scored by partitions."""
    from airflow.sdk.exceptions import AirflowSkipException

    from .pipeline import score_interval as score

    if partitions:
        raise AirflowSkipException(f"scored by {len(partitions)} partitions (run_key {partitions[0]['run_key']})")
    return _score_step(score, config_path, interval_start, interval_end, run_id, model_version)


def _score_step(function, *args):
    """Run a scoring step: bad input, config, model or output fails at once; the rest is retried."""
    from .config import ConfigError
    from .pipeline import PartitionError, QuarantineBudgetExceeded
    from .registry import ModelLoadError
    from .scoring import OutputSanityError
    from .sources import InputError, InputMissingError
    from .validation import SuiteError, TableValidationError

    not_retryable = (
        InputError, QuarantineBudgetExceeded, TableValidationError, SuiteError, ConfigError, ModelLoadError,
        OutputSanityError, PartitionError,
    )
    try:
        return function(*args)
    except InputMissingError:
        raise  # the upstream export may still land: let Airflow retry
    except not_retryable as exc:
        raise _fail_without_retry(exc) from exc


def plan_partitions(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, model_version) -> list[dict]:
    """The interval's partitions for score_partition to map over; none when it is scored in one task."""
    from .pipeline import plan_partitions as plan

    return _score_step(plan, config_path, interval_start, interval_end, run_id, model_version)["partitions"]


def score_partition(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, partition: dict) -> dict:
    from .pipeline import score_partition as score

    return _score_step(score, config_path, interval_start, interval_end, run_id, partition)


def publish_partitions(
    config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, partitions: list[dict]
) -> dict:
    """Swap the partitions in (normally skipped with score_partition when there are none)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from .pipeline import publish_partitions as publish

    if not partitions:
        raise AirflowSkipException("scored in one task by score_interval")
    return _score_step(publish, config_path, interval_start, interval_end, run_id, partitions[0]["run_key"])


def publish_predictions(config_path: str, interval_start: datetime, interval_end: datetime) -> dict:
    """Check the stored interval adds up; the returned summary becomes the Asset event's extra."""
    from .pipeline import check_interval

    return check_interval(config_path, interval_start, interval_end)


# retrain_model: a bad request (unknown version, too few labelled rows, a tampered artifact) fails
# at once; a database outage raises normally and is retried.


def _run_retraining_step(name: str, *args, **kwargs):
    from . import retraining
    from .config import ConfigError
    from .registry import ModelLoadError, RegistryError
    from .training import TrainingError

    try:
        return getattr(retraining, name)(*args, **kwargs)
    except (retraining.RetrainingError, RegistryError, ModelLoadError, TrainingError, ConfigError) as exc:
        raise _fail_without_retry(exc) from exc


def train_candidate(config_path: str, reason: str, window_start, window_end, labels_as_of, trigger_interval) -> dict:
    return _run_retraining_step("train_candidate", config_path, reason, window_start, window_end, labels_as_of, trigger_interval)


def validate_candidate(config_path: str, candidate: dict, run_id: str | None = None) -> dict:
    return _run_retraining_step("validate_candidate", config_path, candidate, run_id)


def approval_request(config_path: str, validation: dict) -> dict | None:
    """The reviewer's subject and body when retraining.promotion = "manual" asks a person; else None."""
    return _run_retraining_step("approval_request", config_path, validation)


def decide_promotion(config_path: str, validation: dict, reason: str, run_id: str, review: dict | None = None) -> dict:
    return _run_retraining_step("decide_promotion", config_path, validation, reason, run_id, review)


def rollback_champion(
    config_path: str, reason: str, to_version: int | None, run_id: str, expected_champion: int | None = None
) -> dict:
    return _run_retraining_step(
        "rollback_champion", config_path, reason, to_version, run_id, actor=f"airflow:{run_id}", expected_champion=expected_champion
    )


def apply_retention(config_path: str) -> dict:
    return _run_retraining_step("apply_retention", config_path)


def update_realized_performance(config_path: str, labels_as_of) -> list[dict]:
    return _run_retraining_step("update_realized_performance", config_path, labels_as_of)


def score_shadow(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str) -> dict:
    """Shadow-score the interval with the pending candidate; skipped (visible in the UI) when there is none."""
    from airflow.sdk.exceptions import AirflowSkipException

    result = _run_retraining_step("score_shadow", config_path, interval_start, interval_end, run_id)
    if "shadow_version" not in result:
        raise AirflowSkipException(result["skipped"])
    return result


# monitor_drift: an interval score_batch has not published yet is retried (it may still be running);
# a bad config or an unreadable model fails at once.


def monitor_interval(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str) -> dict:
    """monitor_drift's report step: sample, compare with the reference, store metrics and HTML."""
    from .config import ConfigError
    from .drift import DriftError, monitor_interval as monitor
    from .registry import ModelLoadError
    from .sources import InputError, InputMissingError
    from .training import TrainingError

    try:
        return monitor(config_path, interval_start, interval_end, run_id)
    except InputMissingError:
        raise
    except (ConfigError, DriftError, ModelLoadError, InputError, TrainingError) as exc:
        raise _fail_without_retry(exc) from exc


def decide_retrain(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, ti) -> dict:
    """Apply the trigger policy, asking Airflow whether retrain_model exists and is already running."""
    from .drift import RETRAIN_DAG_ID, decide_retrain as decide

    try:
        ti.get_dag(dag_id=RETRAIN_DAG_ID)
        deployed = True
    except Exception:  # noqa: BLE001 - "not found" arrives as a generic server error
        deployed = False  # the decision is recorded; a later breach triggers once the DAG is deployed
    active = ti.get_dr_count(dag_id=RETRAIN_DAG_ID, states=["queued", "running"]) if deployed else 0
    return decide(config_path, interval_start, interval_end, run_id, active, deployed)
