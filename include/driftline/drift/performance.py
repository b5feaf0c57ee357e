"""monitor_drift's estimate step: estimated performance per interval without labels (CBPE, binary;
the math is driftline.estimation), stored beside its realized value once labels arrive, and the
estimated-metric breaches the trigger policy reads."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import numpy as np
from psycopg import sql

from driftline import db
from driftline.config import load_config
from driftline.db.runs import published_intervals
from driftline.drift.errors import IntervalNotScoredError
from driftline.errors import Skipped
from driftline.estimation import METRICS, alert_band, calibrate, estimate_binary, estimated_breach, realized_binary
from driftline.intervals import utc
from driftline.labelled import interval_predictions, read_labels
from driftline.registry import load_model

log = logging.getLogger(__name__)
_REGRESSION = "estimated performance is for binary models (regression gets drift only)"


def estimate_interval(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str) -> dict:
    """Estimate the published interval's performance from its scores and store it (replacing the
    interval's previous estimate); realized values are filled in from labels that have arrived.
    errors.Skipped for a regression model or a model without calibration. [monitoring] segments are
    monitor_interval's (drift.monitor), from the read that draws its drift sample."""
    config = load_config(config_path)
    start, end = utc(interval_start), utc(interval_end)
    if config.task != "binary":
        raise Skipped(_REGRESSION)  # segments: monitor_interval stored them
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url, autocommit=True) as conn:
        db.ensure_schema(conn, config.db_schema)
        published = published_intervals(conn, config.db_schema, start, end)
        published = [row for row in published if row[0] == start and row[1] == end]
        if not published:
            raise IntervalNotScoredError(
                f"interval [{start.isoformat()}, {end.isoformat()}) has no published predictions: run score_batch for it first"
            )
        _, _, version, _ = published[0]
        model = load_model(
            conn, config.db_schema, version, scoring_only=True, pinned_pickles=config.handoff.pickle_sha256
        )  # verifies the calibration's hash
        calibration = model.manifest.get("calibration")
        labels_as_of = datetime.now(timezone.utc)
        if calibration is None:
            raise Skipped(
                f"model v{version} has no calibration (registered before estimation, or a one-class holdout): retrain it"
            )
        scores = np.array(
            conn.execute(
                sql.SQL("SELECT score FROM {} WHERE interval_start = %s AND interval_end = %s").format(
                    db.table(config.db_schema, "predictions")
                ),
                (start, end),
            ).fetchall(),
            dtype="float64",
        ).reshape(-1)
        estimates = estimate_binary(
            calibrate(calibration, scores), scores, config.threshold, calibration_sd=calibration.get("uncertainty")
        )
        # The alert band from the data (estimation.chunk_spread at registration), per metric.
        spreads = calibration.get("thresholds") or {}
        bands = {m: alert_band(spreads.get(m), config.drift.trigger.estimated_metric_std) for m in METRICS}
        table = db.table(config.db_schema, "estimated_performance")
        with conn.transaction():
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE interval_start = %s AND interval_end = %s").format(table), (start, end)
            )
            with conn.cursor() as cursor:
                cursor.executemany(
                    sql.SQL(
                        "INSERT INTO {} (interval_start, interval_end, model_version, run_id, metric, estimate, band_low, "
                        "band_high, rows, threshold, alert_low, alert_high) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    ).format(table),
                    [
                        (start, end, version, run_id, e.metric, e.value, e.low, e.high, len(scores), config.threshold)
                        + (bands.get(e.metric) or (None, None))
                        for e in estimates
                    ],
                )
        # The segments' realized values: monitor_interval wrote them with the segments.
        realized = record_realized(conn, config, start, end, labels_as_of, segments=False)
    summary = {
        "interval_start": start.isoformat(),
        "interval_end": end.isoformat(),
        "model_version": version,
        "rows": int(len(scores)),
        "estimates": {
            e.metric: [round(e.value, 6), round(e.low, 6), round(e.high, 6)] for e in estimates if e.metric in METRICS
        },
        "alert_bands": {m: [round(band[0], 6), round(band[1], 6)] for m, band in bands.items() if band},
        "realized_rows": realized,
    }
    log.info("estimated performance [%s, %s): %s", start.isoformat(), end.isoformat(), json.dumps(summary))
    return summary


def record_realized(
    conn, config, start: datetime, end: datetime, labels_as_of: datetime, labels=None, segments: bool = True
) -> int:
    """Fill the interval's estimate rows with the metric measured on labels observed by labels_as_of
    (the estimate's error and whether the band held follow in the estimated_vs_realized view).
    Returns the labelled rows used (0: none has arrived; the rows keep no realized value).
    segments: also refill the [monitoring] segments' realized values (re-reads the interval's input)."""
    table = db.table(config.db_schema, "estimated_performance")
    exists = conn.execute(
        sql.SQL("SELECT threshold FROM {} WHERE interval_start = %s AND interval_end = %s LIMIT 1").format(table),
        (start, end),
    ).fetchone()
    if exists is None:
        return 0
    labels = read_labels(config, labels_as_of) if labels is None else labels
    predictions = interval_predictions(conn, config.db_schema, start, end)
    joined = predictions.rename(columns={"entity_key": config.entity_key}).merge(
        labels, on=config.entity_key, how="inner"
    )
    realized = (
        realized_binary(joined[config.target].to_numpy(), joined["score"].to_numpy(), exists[0]) if len(joined) else {}
    )
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "UPDATE {} SET realized = (%s::jsonb ->> metric)::double precision, realized_rows = %s, "
                "labels_as_of = %s WHERE interval_start = %s AND interval_end = %s"
            ).format(table),
            (json.dumps(realized), len(joined), labels_as_of, start, end),
        )
    if segments and config.monitoring.segments:
        from driftline.drift.segments import record_segment_realized

        record_segment_realized(conn, config, start, end, labels)
    return int(len(joined))


def monitored_breaches(conn, schema: str, policy) -> dict[datetime, tuple[bool, str | None, float | None]]:
    """(drift breach, estimated-metric breach reason or None, estimate) of every monitored interval,
    by interval end. Two monitored intervals with one end (a manual run over a longer range) are one
    point in data order: the one starting first speaks for it, here and in drift.decision (which reads
    its numbers in the same order). The reference for estimated_metric_drop is the holdout value, and the alert band
    comes from the holdout's chunk spread, in the registry row of the model that scored the interval
    (computed once, at registration)."""
    metric = policy.estimated_metric
    rows = conn.execute(
        sql.SQL(
            "SELECT DISTINCT ON (d.interval_end) d.interval_end, d.breach, e.estimate, (m.manifest -> 'calibration' -> 'reference' ->> %s)::float8, "
            "m.manifest -> 'calibration' -> 'thresholds' -> %s "
            "FROM {d} d LEFT JOIN {e} e ON e.interval_start = d.interval_start AND e.interval_end = d.interval_end "
            "AND e.metric = %s LEFT JOIN {m} m ON m.version = e.model_version "
            "ORDER BY d.interval_end, d.interval_start"
        ).format(
            d=db.table(schema, "drift_intervals"),
            e=db.table(schema, "estimated_performance"),
            m=db.table(schema, "model_versions"),
        ),
        (metric, metric, metric),
    ).fetchall()
    return {
        utc(end): (
            bool(breach),
            estimated_breach(
                metric,
                estimate,
                reference,
                policy.estimated_metric_floor,
                policy.estimated_metric_drop,
                alert_band(spread, policy.estimated_metric_std),
            ),
            estimate,
        )
        for end, breach, estimate, reference, spread in rows
    }
