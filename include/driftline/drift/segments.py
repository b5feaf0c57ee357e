"""Per-segment monitoring ([monitoring] segments): for each listed categorical feature, its top_n
values in the model's reference sample (fixed per model version, stored in segment_values) plus
the remainder bucket (stored as segment_value "other" with segment_other true, so a real value
"other" stays its own segment); per interval and segment value the rows, prediction mean, drifted features (KS / chi-square
on seeded samples, only where both sides have min_segment_rows), the CBPE
estimate (binary, calibrated models) and the realized value from labels that have arrived.

The pure parts (top_values, assign, segment_totals, drifted_count) take frames and arrays;
monitor_segments stores the rows and is called from monitor_interval, with the interval's rows
(IntervalRows) kept from the one read that also draws the drift sample.
"""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
import pandas as pd
from psycopg import sql

from driftline import db
from driftline.config import DatasetConfig
from driftline.drift.interval_rows import Published, interval_frame, read_rows, seeded_sample
from driftline.estimation import METRICS, calibrate, estimate_binary, realized_binary

OTHER = "other"  # the remainder's stored label; segment_other (true) tells it from a real "other"
# Evidently's default threshold of the two p-value tests the segments run: used when [drift] leaves
# numeric_threshold / categorical_threshold out, or sets them for another method (their scale then differs).
P_VALUE_THRESHOLD = 0.05
log = logging.getLogger(__name__)


def top_values(values: pd.Series, top_n: int) -> list[tuple[str, int]]:
    """The top_n most frequent values (as text, ties broken by value) with their counts."""
    counts = values.dropna().astype(str).value_counts()
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(str(v), int(n)) for v, n in ordered[:top_n]]


def assign(values: pd.Series, kept: list[str]) -> pd.Series:
    """Each row's segment value: itself (as text) when kept, else None, the remainder bucket (missing
    values included). None is no text, so no real value can fall into the remainder by its name."""
    text = values.astype("string")
    return pd.Series(np.where(text.isin(kept).to_numpy(dtype=bool), text.astype(object), None), index=values.index)


def in_segment(segments: pd.Series, value: str | None) -> np.ndarray:
    """Rows of one segment value (None: the remainder bucket)."""
    return segments.isna().to_numpy() if value is None else (segments == value).to_numpy(dtype=bool)


def segment_totals(segments: pd.Series, scores: np.ndarray) -> pd.DataFrame:
    """Rows and prediction mean per segment value (index: segment value, None for the remainder, last)."""
    frame = pd.DataFrame({"segment": segments.to_numpy(), "score": np.asarray(scores, dtype="float64")})
    grouped = frame.groupby("segment", sort=True, dropna=False)["score"]
    totals = pd.DataFrame({"rows": grouped.size(), "prediction_mean": grouped.mean()})
    totals.index = [None if pd.isna(value) else value for value in totals.index]
    return totals


def stored(value: str | None) -> tuple[str, bool]:
    """(segment_value, segment_other) of a segment value as the tables hold it."""
    return (OTHER, True) if value is None else (value, False)


def p_value_thresholds(config: DatasetConfig) -> tuple[float, float]:
    """(numeric, categorical) p-value thresholds of the segments' KS and chi-square tests: [drift]'s
    when set for those very methods, else P_VALUE_THRESHOLD."""
    drift = config.drift
    numeric = drift.numeric_threshold if drift.numeric_method == "ks" else None
    categorical = drift.categorical_threshold if drift.categorical_method == "chisquare" else None
    return (
        P_VALUE_THRESHOLD if numeric is None else numeric,
        P_VALUE_THRESHOLD if categorical is None else categorical,
    )


def drifted_count(config: DatasetConfig, current: pd.DataFrame, reference: pd.DataFrame, skip: str) -> int:
    """Features (all but the segment column) whose two-sample test rejects at p_value_thresholds:
    Kolmogorov-Smirnov for numeric, chi-square on the value counts for categorical."""
    from scipy.stats import chi2_contingency, ks_2samp

    numeric_threshold, categorical_threshold = p_value_thresholds(config)
    drifted = 0
    for feature in config.features:
        if feature.name == skip:
            continue
        cur, ref = current[feature.name].dropna(), reference[feature.name].dropna()
        if len(cur) == 0 or len(ref) == 0:
            continue
        if feature.type == "numeric":
            # asymp: the exact p-value (the default below 10k rows) costs ~0.25 s a column with ties
            p = ks_2samp(cur.astype("float64"), ref.astype("float64"), method="asymp").pvalue
            drifted += bool(p < numeric_threshold)
        else:
            table = pd.crosstab(
                np.r_[np.zeros(len(cur)), np.ones(len(ref))], np.r_[cur.astype(str), ref.astype(str)]
            ).to_numpy()
            if table.shape[1] < 2:
                continue
            p = chi2_contingency(table).pvalue
            drifted += bool(p < categorical_threshold)
    return drifted


def ensure_segment_values(conn, config: DatasetConfig, version: int, reference: pd.DataFrame) -> dict[str, list[str]]:
    """The kept values per segment column for this model version; chosen from its reference once."""
    table = db.table(config.db_schema, "segment_values")
    kept: dict[str, list[str]] = {}
    for column in config.monitoring.segments:
        rows = conn.execute(
            sql.SQL(
                "SELECT segment_value FROM {} WHERE model_version = %s AND segment_column = %s ORDER BY rank"
            ).format(table),
            (version, column),
        ).fetchall()
        if not rows:
            top = top_values(reference[column], config.monitoring.top_n)
            with conn.cursor() as cursor:
                cursor.executemany(
                    sql.SQL(
                        "INSERT INTO {} (model_version, segment_column, segment_value, rank, reference_rows) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                    ).format(table),
                    [(version, column, value, rank, n) for rank, (value, n) in enumerate(top, 1)],
                )
            rows = [(value,) for value, _ in top]
        kept[column] = [value for (value,) in rows]
    return kept


def monitor_segments(conn, config: DatasetConfig, ctx: dict) -> int:
    """Replace the interval's segment rows. ctx: start, end, version, run_id, predictions (entity_key,
    score), reference (frame), calibration (or None), labels (frame), rows (IntervalRows, or absent:
    read the input). Returns the rows written."""
    settings = config.monitoring
    if not settings.segments:
        return 0
    start, end = ctx["start"], ctx["end"]
    kept = ensure_segment_values(conn, config, ctx["version"], ctx["reference"])
    intervals, estimates = segment_rows(config, ctx, kept)
    with conn.transaction():
        for name in ("segment_intervals", "segment_estimates"):
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE interval_start = %s AND interval_end = %s").format(
                    db.table(config.db_schema, name)
                ),
                (start, end),
            )
        with conn.cursor() as cursor:
            cursor.executemany(
                sql.SQL(
                    "INSERT INTO {} (interval_start, interval_end, model_version, run_id, segment_column, segment_value, "
                    "segment_other, rows, prediction_mean, drifted_features, drift_note) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                ).format(db.table(config.db_schema, "segment_intervals")),
                intervals,
            )
            if estimates:
                cursor.executemany(
                    sql.SQL(
                        "INSERT INTO {} (interval_start, interval_end, segment_column, segment_value, segment_other, "
                        "metric, estimate, band_low, band_high, realized, realized_rows) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    ).format(db.table(config.db_schema, "segment_estimates")),
                    estimates,
                )
    return len(intervals)


def segment_rows(config: DatasetConfig, ctx: dict, kept: dict[str, list[str]]) -> tuple[list[tuple], list[tuple]]:
    """(segment_intervals rows, segment_estimates rows) of the interval; no database. ctx["rows"]:
    the IntervalRows monitor_interval kept while streaming the interval (absent: read its input)."""
    settings = config.monitoring
    start, end, version = ctx["start"], ctx["end"], ctx["version"]
    rows = ctx.get("rows")
    published = Published(config, read_rows(config, start, end) if rows is None else rows, ctx["predictions"])
    reference = ctx["reference"]
    labels = ctx["labels"]
    columns = {column: published.column(column) for column in settings.segments}
    keyed = pd.DataFrame({config.entity_key: published.keys, "score": published.scores, **columns})
    labelled = keyed.merge(labels, on=config.entity_key, how="inner") if len(labels) else keyed.iloc[:0]
    intervals, estimates = [], []
    for column in settings.segments:
        segments = assign(columns[column], kept[column])
        ref_segments = assign(reference[column], kept[column])
        label_segments = assign(labelled[column], kept[column]) if len(labelled) else pd.Series([], dtype=str)
        totals = segment_totals(segments, published.scores)
        # Each row's segment as a code once (in_segment per value compared every row's text each time).
        codes, values = pd.factorize(segments, use_na_sentinel=True)
        for value, row in totals.iterrows():
            inside = np.flatnonzero(codes == (-1 if value is None else values.get_loc(value)))
            ref = reference[in_segment(ref_segments, value)]
            if len(inside) >= settings.min_segment_rows and len(ref) >= settings.min_segment_rows:
                size = min(len(inside), config.drift.sample_rows)
                sample = published.features(inside[seeded_sample(len(inside), size, config.drift.seed)])
                drifted, note = drifted_count(config, sample, ref, column), None
            else:
                drifted = None
                note = (
                    f"drift not tested: {len(inside)} interval rows, {len(ref)} reference rows "
                    f"(min_segment_rows {settings.min_segment_rows})"
                )
            intervals.append(
                (
                    start,
                    end,
                    version,
                    ctx["run_id"],
                    column,
                    *stored(value),
                    int(row["rows"]),
                    row["prediction_mean"],
                    drifted,
                    note,
                )
            )
            current = pd.DataFrame({"score": published.scores[inside]})
            estimates.extend(
                _performance(config, ctx, column, value, current, labelled[in_segment(label_segments, value)])
            )
    return intervals, estimates


def _performance(config: DatasetConfig, ctx: dict, column: str, value: str | None, current, labelled) -> list[tuple]:
    """(…, metric, estimate, low, high, realized, realized_rows) rows of one segment value (binary)."""
    if config.task != "binary":
        return []
    scores = current["score"].to_numpy(dtype="float64")
    calibration = ctx["calibration"]
    found = {}
    if calibration is not None and len(scores):
        found = {
            e.metric: e
            for e in estimate_binary(
                calibrate(calibration, scores), scores, config.threshold, calibration_sd=calibration.get("uncertainty")
            )
        }
    realized = (
        realized_binary(labelled[config.target].to_numpy(), labelled["score"].to_numpy(), config.threshold)
        if len(labelled)
        else {}
    )
    rows = []
    for metric in METRICS:
        e = found.get(metric)
        if e is None and metric not in realized:
            continue
        rows.append(
            (
                ctx["start"],
                ctx["end"],
                column,
                *stored(value),
                metric,
                None if e is None else e.value,
                None if e is None else e.low,
                None if e is None else e.high,
                realized.get(metric),
                len(labelled) if metric in realized else None,
            )
        )
    return rows


def record_segment_realized(conn, config: DatasetConfig, start: datetime, end: datetime, labels: pd.DataFrame) -> int:
    """Refill the interval's realized values per segment from labels (update_realized_performance,
    after estimate_performance wrote its segments). Re-reads the interval's input; when that is
    gone, the segments keep their earlier values. Returns the labelled rows used."""
    from driftline.errors import DriftlineError
    from driftline.labelled import interval_predictions

    if not config.monitoring.segments or config.task != "binary":
        return 0
    found = conn.execute(
        sql.SQL("SELECT model_version FROM {} WHERE interval_start = %s AND interval_end = %s LIMIT 1").format(
            db.table(config.db_schema, "segment_intervals")
        ),
        (start, end),
    ).fetchone()
    if found is None:
        return 0
    kept: dict[str, list[str]] = {column: [] for column in config.monitoring.segments}
    for column, value in conn.execute(
        sql.SQL("SELECT segment_column, segment_value FROM {} WHERE model_version = %s ORDER BY rank").format(
            db.table(config.db_schema, "segment_values")
        ),
        (found[0],),
    ).fetchall():
        kept.setdefault(column, []).append(value)
    try:
        frame = interval_frame(config, start, end, interval_predictions(conn, config.db_schema, start, end))
    except (DriftlineError, OSError) as exc:
        log.warning("segments of [%s, %s) keep their realized values: input not readable (%s)", start, end, exc)
        return 0
    labelled = frame.merge(labels, on=config.entity_key, how="inner") if len(labels) else frame.iloc[:0]
    context = {"start": start, "end": end, "calibration": None}
    rows = []
    for column in config.monitoring.segments:
        segments = assign(labelled[column], kept[column]) if len(labelled) else pd.Series([], dtype=str)
        for value in segment_totals(segments, np.zeros(len(segments))).index:
            chosen = labelled[in_segment(segments, value)]
            rows.extend(_performance(config, context, column, value, chosen, chosen))
    table = db.table(config.db_schema, "segment_estimates")
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "UPDATE {} SET realized = NULL, realized_rows = NULL WHERE interval_start = %s AND interval_end = %s"
            ).format(table),
            (start, end),
        )
        with conn.cursor() as cursor:
            cursor.executemany(
                sql.SQL(
                    "INSERT INTO {} (interval_start, interval_end, segment_column, segment_value, segment_other, "
                    "metric, estimate, band_low, band_high, realized, realized_rows) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT "
                    "(interval_start, interval_end, segment_column, segment_value, segment_other, metric) DO UPDATE "
                    "SET realized = EXCLUDED.realized, realized_rows = EXCLUDED.realized_rows"
                ).format(table),
                rows,
            )
    return int(len(labelled))
