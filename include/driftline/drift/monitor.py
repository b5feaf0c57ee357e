"""monitor_drift's compare step for one interval: sample what score_batch scored, compare it with the
model's reference (drift statistics from the samples, attribution drift) and store the results.

Each interval is sampled while it streams from its input file (the rows score_batch scored, never
the whole interval in memory); its per-feature results and summary replace that interval's previous
ones in one transaction. The sample is kept for the Evidently HTML report, which the render_report
task draws afterwards (drift.html), so no decision waits for Evidently. No `import lightgbm`: the
model is the native booster and the attributions Linear TreeSHAP's, the reference's computed once
per model version (drift.reference.reference_importance). With [monitoring] segments, the same
read keeps the interval's rows (drift.interval_rows.IntervalRows) and the segments are computed and
stored here, so the interval is read once.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from psycopg import sql
from psycopg.types.json import Jsonb

from driftline import db
from driftline.config import DatasetConfig, load_config
from driftline.db.runs import published_interval
from driftline.drift.errors import DriftError, IntervalNotScoredError
from driftline.drift.html import sample_path
from driftline.drift.interval_rows import IntervalRows
from driftline.drift.policy import FeatureResult, is_breach
from driftline.drift.reference import ensure_reference, reference_importance
from driftline.drift.report import evidently_frame, report_path, sample_interval
from driftline.drift.statistics import SCORE_COLUMN, drift_results
from driftline.drift.summary import refresh_report_summary
from driftline.intervals import utc
from driftline.registry import LoadedModel, load_model
from driftline.scoring.engine import predict

log = logging.getLogger(__name__)


def monitor_interval(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str) -> dict:
    """Compare the interval score_batch published with its model's reference; store and return the summary."""
    config = load_config(config_path)
    start, end = utc(interval_start), utc(interval_end)
    stages: dict[str, float] = {}
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url, autocommit=True) as conn:
        db.ensure_schema(conn, config.db_schema)
        version, rows_scored, quarantined = _published_interval(conn, config, start, end)
        t = time.perf_counter()
        model = load_model(
            conn, config.db_schema, version, scoring_only=True, pinned_pickles=config.handoff.pickle_sha256
        )  # no lightgbm import
        reference_file = ensure_reference(conn, config, model)
        reference = pd.read_parquet(reference_file)
        stages["reference"] = time.perf_counter() - t

        attribution: dict = {"reference_file": reference_file}
        rows = IntervalRows(config) if config.monitoring.segments else None  # from the sample's read
        current, features, prediction, rows_seen = compare_interval(
            config, model, reference, start, end, quarantined, stages, attribution, rows
        )
        current_rows = len(current)
        t = time.perf_counter()
        report = report_path(config, start, end)
        save_sample(current, sample_path(report))  # render_report draws the HTML from it
        stages["keep_sample"] = time.perf_counter() - t

        counted = [f for f in features if f.counted]
        share = len(counted) / len(features)
        summary: dict[str, Any] = {
            "interval_start": start.isoformat(),
            "interval_end": end.isoformat(),
            "model_version": model.version,
            "run_id": run_id,
            "rows_scored": rows_scored,
            "rows_read": rows_seen,
            "current_rows": current_rows,
            "reference_rows": len(reference),
            "features": len(features),
            "drifted_features": sum(f.drifted for f in features),
            "counted_features": len(counted),
            "drifted_share": share,
            "counted": [f.column_name for f in counted],
            "prediction_method": prediction.method,
            "prediction_drift": prediction.statistic,
            "breach": is_breach(config.drift.trigger, share, prediction.statistic),
            "report_path": str(report),
            "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
            "attribution": attribution["result"].summary() if attribution["result"] else None,
        }
        with conn.transaction():  # readers see the interval's drift with its attribution drift, never without
            store_results(conn, config, summary, features)
            if attribution["result"]:  # None: an imported model whose contributions cannot be named by feature
                _store_attribution(conn, config, summary, attribution["result"])
        if rows is not None:
            t = time.perf_counter()
            summary["segment_rows"] = _segments(conn, config, model, run_id, (start, end), reference, rows)
            summary["stage_seconds"]["segments"] = round(time.perf_counter() - t, 3)
        refresh_report_summary(conn, config, start, end)
    log.info("monitored interval [%s, %s): %s", start.isoformat(), end.isoformat(), json.dumps(summary))
    return summary


def compare_interval(
    config: DatasetConfig,
    model: LoadedModel,
    reference: pd.DataFrame,
    start: datetime,
    end: datetime,
    quarantined: set[str],
    stages: dict[str, float],
    attribution: dict | None = None,
    rows: IntervalRows | None = None,
) -> tuple[pd.DataFrame, list[FeatureResult], FeatureResult, int]:
    """Sample the interval, score the sample, test each column: (sample, features, prediction, rows read).

    attribution: a dict to receive the attribution drift (explain.Attribution under "result"); with
    "reference_file" (the stored reference sample) the reference's importance is the cached one.
    rows: receives every row that parsed, from the same read (the segments' input)."""
    t = time.perf_counter()
    current, rows_seen = sample_interval(config, start, end, quarantined, rows)
    if current is None or len(current) == 0:
        raise DriftError(f"interval [{start.isoformat()}, {end.isoformat()}) has no scored rows to compare")
    # Arrow keeps freed read buffers in its own pool; hand them back so the report's allocations
    # reuse that memory instead of stacking on top of it (peak RSS = max of the stages, not the sum).
    pa.default_memory_pool().release_unused()
    scores = predict(model, current, config)
    current = evidently_frame(current, config)
    current[SCORE_COLUMN] = scores
    stages["sample"] = time.perf_counter() - t

    t = time.perf_counter()
    reference_file = (attribution or {}).get("reference_file")
    result = _attribution_drift(config, model, reference, current, reference_file)
    if attribution is not None:
        attribution["result"] = result
    stages["attribution"] = time.perf_counter() - t

    t = time.perf_counter()
    features, prediction = drift_results(config, reference, current)
    stages["statistics"] = time.perf_counter() - t
    return current, features, prediction, rows_seen


def _attribution_drift(
    config: DatasetConfig, model: LoadedModel, reference: pd.DataFrame, current: pd.DataFrame, reference_file=None
):
    """Mean |TreeSHAP contribution| per feature on the reference and on the interval's sample, and
    the nDCG of the interval's importance order against the reference's (explain.ndcg); None for an
    imported pipeline without per-feature contributions."""
    from driftline.scoring.explain import Attribution, Contributions, frame_contributions, mean_abs_contribution, ndcg
    from driftline.scoring.features import bind, own_pipeline

    if own_pipeline(model) is not None:
        from driftline.errors import BadConfig
        from driftline.scoring.sklearn_model import explainable_parts

        try:
            explainable_parts(model.booster.estimator, config)
        except BadConfig:
            return None  # no per-feature contributions (not LightGBM, or encoders): no attribution drift
    binding, explain = bind(model, config), Contributions(model)
    if reference_file is not None:
        ref = np.asarray(reference_importance(config, model, reference_file, reference))
    else:
        ref = mean_abs_contribution(frame_contributions(explain, reference, config, binding))
    cur = mean_abs_contribution(frame_contributions(explain, current, config, binding))
    return Attribution(list(binding.names), ref.tolist(), cur.tolist(), ndcg(ref, cur))


def _segments(conn, config: DatasetConfig, model: LoadedModel, run_id: str, interval, reference, rows) -> int:
    """[monitoring] segments of the interval (drift.segments) from the rows the drift sample's read
    kept, replacing its previous segment rows; realized values from the labels arrived by now."""
    from datetime import timezone

    from driftline.drift.segments import monitor_segments
    from driftline.labelled import interval_predictions, read_labels

    start, end = interval
    context = {
        "start": start,
        "end": end,
        "version": model.version,
        "run_id": run_id,
        "predictions": interval_predictions(conn, config.db_schema, start, end),
        "reference": reference,
        "calibration": model.manifest.get("calibration") if config.task == "binary" else None,
        "labels": read_labels(config, datetime.now(timezone.utc)),
        "rows": rows,
    }
    return monitor_segments(conn, config, context)


def save_sample(sample: pd.DataFrame, path) -> None:
    """The interval's drift sample as Parquet, written atomically (render_report reads it)."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    sample.to_parquet(partial, index=False)
    os.replace(partial, path)


def _published_interval(conn, config: DatasetConfig, start: datetime, end: datetime) -> tuple[int, int, set[str]]:
    """(model version, rows scored, quarantined entity keys) of the interval's published scoring run."""
    row = published_interval(conn, config.db_schema, start, end)
    if row is None:
        raise IntervalNotScoredError(
            f"interval [{start.isoformat()}, {end.isoformat()}) has no published predictions in "
            f"{config.db_schema}.run_summary: score_batch has not scored it (yet). Run score_batch for it first."
        )
    return row


def store_results(conn, config: DatasetConfig, summary: dict, features: list[FeatureResult]) -> None:
    """Replace the interval's summary and per-feature rows in one transaction."""
    schema = config.db_schema
    key = (summary["interval_start"], summary["interval_end"])
    with conn.transaction():
        for name in ("drift_features", "drift_intervals"):
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE interval_start = %s AND interval_end = %s").format(
                    db.table(schema, name)
                ),
                key,
            )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (interval_start, interval_end, model_version, run_id, rows_scored, current_rows, "
                "reference_rows, features, drifted_features, counted_features, drifted_share, prediction_method, "
                "prediction_drift, breach, report_path, stage_seconds) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            ).format(db.table(schema, "drift_intervals")),
            (
                *key,
                summary["model_version"],
                summary["run_id"],
                summary["rows_scored"],
                summary["current_rows"],
                summary["reference_rows"],
                summary["features"],
                summary["drifted_features"],
                summary["counted_features"],
                summary["drifted_share"],
                summary["prediction_method"],
                summary["prediction_drift"],
                summary["breach"],
                summary["report_path"],
                Jsonb(summary["stage_seconds"]),
            ),
        )
        with conn.cursor() as cursor:
            cursor.executemany(
                sql.SQL(
                    "INSERT INTO {} (interval_start, interval_end, model_version, column_name, column_type, method, "
                    "statistic, threshold, drifted, effect_size, counted) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                ).format(db.table(schema, "drift_features")),
                [
                    (
                        *key,
                        summary["model_version"],
                        f.column_name,
                        f.column_type,
                        f.method,
                        f.statistic,
                        f.threshold,
                        f.drifted,
                        f.effect_size,
                        f.counted,
                    )
                    for f in features
                ],
            )


def _store_attribution(conn, config: DatasetConfig, summary: dict, attribution) -> None:
    """The interval's attribution drift beside its drift summary (store_results just replaced the row)."""
    conn.execute(
        sql.SQL(
            "UPDATE {} SET attribution_ndcg = %s, attribution = %s WHERE interval_start = %s AND interval_end = %s"
        ).format(db.table(config.db_schema, "drift_intervals")),
        (
            attribution.ndcg,
            Jsonb(
                {"features": attribution.features, "reference": attribution.reference, "current": attribution.current}
            ),
            summary["interval_start"],
            summary["interval_end"],
        ),
    )
