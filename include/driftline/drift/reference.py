"""The drift reference of a model version: a seeded sample of its training rows plus the model's own
scores on them, built once per version, stored as Parquet and recorded in drift_references."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow as pa
from psycopg import sql

from driftline import db
from driftline.config import DatasetConfig
from driftline.drift.errors import DriftError
from driftline.drift.report import SCORE_COLUMN, evidently_frame, sample_tables
from driftline.registry import LoadedModel
from driftline.scoring.engine import predict

log = logging.getLogger(__name__)

MIN_REFERENCE_ROWS = 100


def reference_path(config: DatasetConfig, version: int) -> Path:
    """Where the reference sample of a model version is stored."""
    return config.drift.reference_dir / f"v{version:04d}.parquet"


def ensure_reference(
    conn: psycopg.Connection, config: DatasetConfig, model: LoadedModel, training_rows: pd.DataFrame | None = None
) -> Path:
    """The stored reference sample of this model version; built once (from training_rows, or the
    labelled history within the model's training window) and recorded in drift_references."""
    schema = config.db_schema
    row = conn.execute(
        sql.SQL("SELECT path, sha256 FROM {} WHERE model_version = %s").format(db.table(schema, "drift_references")),
        (model.version,),
    ).fetchone()
    if row is not None and Path(row[0]).is_file():
        if _file_sha256(Path(row[0])) == row[1]:
            return Path(row[0])
        log.warning("reference of model v%s at %s changed on disk; rebuilding it", model.version, row[0])
    frame = build_reference(config, model, training_rows)
    path = reference_path(config, model.version)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".parquet.partial")
    frame.to_parquet(partial, index=False)
    os.replace(partial, path)  # readers never see half a file
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (model_version, path, rows, sha256) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (model_version) DO UPDATE SET path = EXCLUDED.path, rows = EXCLUDED.rows, "
                "sha256 = EXCLUDED.sha256, created_at = now()"
            ).format(db.table(schema, "drift_references")),
            (model.version, str(path), len(frame), _file_sha256(path)),
        )
    log.info("stored the drift reference of model v%s: %s rows in %s", model.version, len(frame), path)
    return path


def build_reference(
    config: DatasetConfig, model: LoadedModel, training_rows: pd.DataFrame | None = None
) -> pd.DataFrame:
    """A seeded sample of the model's training rows: features plus the model's own score."""
    from driftline.labelled import labelled_rows, read_table

    settings = config.drift
    if training_rows is None:
        # Typed and with unusable rows left out, as training saw them (a ' ' in a numeric column).
        history = labelled_rows(config, read_table(config.resolve_location(config.history_uri), config))
        training_rows = _within_training_window(history, config, model.manifest)
    missing = [name for name in config.feature_names if name not in training_rows.columns]
    if missing:
        raise DriftError(f"training rows for the drift reference lack column(s) {missing} of {config.path.name}")
    if len(training_rows) < MIN_REFERENCE_ROWS:
        raise DriftError(
            f"only {len(training_rows)} training rows for the drift reference of model v{model.version}; "
            f"need at least {MIN_REFERENCE_ROWS}"
        )
    table = pa.Table.from_pandas(training_rows[config.feature_names], preserve_index=False)
    sample = sample_tables([table], settings.sample_rows, settings.seed)[0].to_pandas()
    reference = evidently_frame(sample, config)
    for name in config.categorical_features:
        sample[name] = sample[name].astype("string")
    reference[SCORE_COLUMN] = predict(model, sample, config)
    return reference


def _within_training_window(history: pd.DataFrame, config: DatasetConfig, manifest: dict) -> pd.DataFrame:
    """History rows inside the manifest's training window (not its holdout); all rows if it has none."""
    window = manifest.get("training_window") or {}
    if not window.get("start") or not window.get("end") or config.event_time not in history.columns:
        return history
    times = pd.to_datetime(history[config.event_time], utc=True)
    inside = history[(times >= pd.Timestamp(window["start"])) & (times <= pd.Timestamp(window["end"]))]
    if len(inside) < MIN_REFERENCE_ROWS:
        log.warning(
            "only %s history rows inside the training window of model v%s; using the whole history as reference",
            len(inside),
            manifest.get("version"),
        )
        return history
    return inside


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def reference_importance(config: DatasetConfig, model: LoadedModel, path: Path, reference: pd.DataFrame) -> list[float]:
    """Mean |TreeSHAP contribution| per feature (the model's order) on the reference sample at path,
    computed once per model version: kept beside the sample, keyed by the model's and the sample's
    sha256 and used only while both still match (a retrained model or a rebuilt sample recomputes it)."""
    import json

    from driftline.scoring.explain import Contributions, frame_contributions, mean_abs_contribution
    from driftline.scoring.features import bind

    binding = bind(model, config)
    key = {"model_sha256": model.sha256, "reference_sha256": _file_sha256(path), "features": list(binding.names)}
    cache = path.with_suffix(".attribution.json")
    if model.sha256 and cache.is_file():
        try:
            stored = json.loads(cache.read_text())
        except (OSError, ValueError):
            stored = {}
        if all(stored.get(k) == v for k, v in key.items()) and len(stored.get("importance", [])) == len(binding.names):
            return [float(v) for v in stored["importance"]]
    importance = mean_abs_contribution(frame_contributions(Contributions(model), reference, config, binding)).tolist()
    if model.sha256:
        partial = cache.with_suffix(".json.partial")
        partial.write_text(json.dumps({**key, "importance": importance}))
        os.replace(partial, cache)
    return importance
