"""Realized performance: late labels joined to each recent published interval's predictions,
recomputed as labels arrive, and the interval's estimated performance filled with the realized values."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pandas as pd
from psycopg import sql
from psycopg.types.json import Jsonb

from driftline import db
from driftline.config import DatasetConfig, load_config
from driftline.db.runs import published_intervals
from driftline.drift.performance import record_realized
from driftline.intervals import utc
from driftline.labelled import interval_predictions, read_labels
from driftline.retraining.windows import connect
from driftline.training import evaluate

log = logging.getLogger(__name__)


def update_realized_performance(config_path: str, labels_as_of: datetime | str | None = None) -> list[dict]:
    """Join labels observed by labels_as_of to each recent published interval and replace its realized_performance row.

    Recent: ending within retraining.realized_lookback_days before the newest label observed by
    labels_as_of (the data's clock, not the wall clock: intervals in 2024 get rows without flags), or
    before labels_as_of when no label has arrived; older intervals keep their last row.
    """
    config = load_config(config_path)
    as_of = utc(labels_as_of) or datetime.now(timezone.utc)
    labels = read_labels(config, as_of)
    since = realized_since(config, labels, as_of)
    results = []
    with connect(config, autocommit=False) as conn:
        for start, end, version, run_id in published_intervals(conn, config.db_schema, since, None):
            predictions = interval_predictions(conn, config.db_schema, start, end)
            joined = predictions.rename(columns={"entity_key": config.entity_key}).merge(
                labels, on=config.entity_key, how="inner"
            )
            metrics = {}
            if len(joined):
                metrics = evaluate(config, joined[config.target].to_numpy(), joined["score"].to_numpy())
            row = {
                "interval_start": start.isoformat(),
                "interval_end": end.isoformat(),
                "model_version": version,
                "rows_predicted": int(len(predictions)),
                "rows_labelled": int(len(joined)),
                "metrics": metrics,
            }
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (interval_start, interval_end, model_version, run_id, rows_predicted, "
                    "rows_labelled, metrics, labels_as_of) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (interval_start, interval_end) DO UPDATE SET model_version = EXCLUDED.model_version, "
                    "run_id = EXCLUDED.run_id, rows_predicted = EXCLUDED.rows_predicted, "
                    "rows_labelled = EXCLUDED.rows_labelled, metrics = EXCLUDED.metrics, "
                    "labels_as_of = EXCLUDED.labels_as_of, computed_at = now()"
                ).format(db.table(config.db_schema, "realized_performance")),
                (start, end, version, run_id, len(predictions), len(joined), Jsonb(metrics), as_of),
            )
            results.append(row)
            # Labels have arrived: the interval's estimated performance gets its realized values.
            record_realized(conn, config, start, end, as_of, labels)
        conn.commit()
    log.info("realized performance (labels as of %s): %s", as_of.isoformat(), json.dumps(results))
    return results


def realized_since(config: DatasetConfig, labels: pd.DataFrame, as_of: datetime) -> datetime:
    """Where realized performance's lookback starts: realized_lookback_days before the newest label."""
    anchor = labels["observed_at"].max().to_pydatetime() if len(labels) else as_of
    return anchor - timedelta(days=config.retraining.realized_lookback_days)


def realized_empty_reason(conn, config: DatasetConfig) -> str:
    """Why realized_performance has no row: nothing scored, or not computed yet (and how to)."""
    published = published_intervals(conn, config.db_schema)
    if not published:
        return "no interval has been published yet (`driftline score` or score_batch); realized performance needs predictions"
    labels = read_labels(config, datetime.now(timezone.utc))
    if not len(labels):
        return (
            f"{len(published)} published interval(s), but no label has arrived in "
            f"{config.resolve_location(config.labels_uri)}; labels are joined to predictions by {config.entity_key}"
        )
    since = realized_since(config, labels, datetime.now(timezone.utc))
    if published[-1][1] <= since:
        return (
            f"{len(published)} published interval(s), all ending before {since:%Y-%m-%d %H:%M} "
            f"(retraining.realized_lookback_days = {config.retraining.realized_lookback_days} before the newest label)"
        )
    return (
        f"{len(published)} published interval(s) and labels up to {labels['observed_at'].max():%Y-%m-%d %H:%M}, but "
        "realized performance has not been computed (score_batch and retrain_model do it, `driftline score` does "
        f"not); run `driftline realized --config {config.path}`"
    )
