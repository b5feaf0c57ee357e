"""A candidate registered but not yet judged (e.g. by `driftline import-model` under manual promotion):
what retrain_model's validate_candidate needs to judge it instead of training a new one."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from psycopg import sql

from driftline import db, registry
from driftline.config import DatasetConfig, load_config
from driftline.errors import BadConfig
from driftline.intervals import utc
from driftline.labelled import data_checksum, labelled_rows
from driftline.registry.versions import version_status
from driftline.retraining.errors import RetrainingError
from driftline.retraining.windows import connect, labelled_window, newest_labelled_event, resolve_window


def pending_candidate(config_path: str, version: int, labels_as_of: datetime | str | None = None) -> dict:
    """retrain_model's train_candidate with conf `candidate_version`: no training, the registered
    candidate `version` and its window; BadConfig when that version is not a pending candidate."""
    config = load_config(config_path)
    with connect(config) as conn:
        try:
            status, pruned_at = version_status(conn, config.db_schema, version)
        except registry.RegistryError:
            status, pruned_at = "not registered", None
        if status != "candidate" or pruned_at is not None:
            state = "pruned" if pruned_at is not None else status
            raise BadConfig(
                f"candidate_version {version}: the version is {state} in schema {config.db_schema!r}, not a pending "
                "candidate; pass the version `driftline import-model` registered and left awaiting approval "
                "(`driftline versions` lists them), or leave candidate_version empty to train a new candidate"
            )
        manifest = conn.execute(
            sql.SQL("SELECT manifest FROM {} WHERE version = %s").format(db.table(config.db_schema, "model_versions")),
            (version,),
        ).fetchone()[0]
        return candidate_window(conn, config, version, manifest, utc(labels_as_of))


def candidate_window(
    conn: Any, config: DatasetConfig, version: int, manifest: dict, labels_as_of: datetime | None = None
) -> dict:
    """What validate_candidate needs of a registered candidate it did not train: the labelled window it
    is judged on (the retraining window before the newest labelled event) and that window's data checksum."""
    as_of = labels_as_of or datetime.now(timezone.utc)
    end = newest_labelled_event(conn, config, as_of)
    if end is None:
        raise RetrainingError(f"candidate v{version} is registered but there are no labelled rows to validate it on")
    start, end = resolve_window(config, None, end)
    rows = labelled_rows(config, labelled_window(conn, config, start, end, as_of))
    columns = [config.entity_key, config.event_time, config.target, *config.feature_names]
    return {
        "version": version,
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "labels_as_of": as_of.isoformat(),
        "data_checksum": data_checksum(rows[columns]),
        "holdout_metrics": manifest.get("metrics", {}),
    }
