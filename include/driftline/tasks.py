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
    config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, model_version: int | None
) -> dict:
    from .config import ConfigError
    from .pipeline import QuarantineBudgetExceeded, score_interval as score
    from .registry import ModelLoadError
    from .sources import InputError, InputMissingError
    from .validation import SuiteError, TableValidationError

    try:
        return score(config_path, interval_start, interval_end, run_id, model_version)
    except InputMissingError:
        raise  # the upstream export may still land: let Airflow retry
    except (InputError, QuarantineBudgetExceeded, TableValidationError, SuiteError, ConfigError, ModelLoadError) as exc:
        raise _fail_without_retry(exc) from exc


def publish_predictions(config_path: str, interval_start: datetime, interval_end: datetime) -> dict:
    """Check the stored interval adds up; the returned summary becomes the Asset event's extra."""
    from .pipeline import check_interval

    return check_interval(config_path, interval_start, interval_end)
