"""monitor_drift's samples and its Evidently report: seeded samples of the interval, the report
(per-feature and prediction drift, data quality) and its HTML file, rendered by the render_report
task (drift.html) off the decision's path: the decision reads drift.statistics.

Evidently takes seconds to import: it is imported inside the functions that need it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from driftline.config import DatasetConfig
from driftline.drift.errors import DriftError
from driftline.drift.statistics import SCORE_COLUMN, column_methods
from driftline.sources import read_interval

if TYPE_CHECKING:
    from driftline.drift.segments import IntervalRows


def sample_tables(tables: Iterable[pa.Table], rows: int, seed: int) -> tuple[pa.Table | None, int]:
    """A seeded uniform sample of at most `rows` rows from a stream of Arrow tables, and the rows seen.

    Bottom-k sampling: every row draws a random key and the rows with the smallest keys are kept,
    so memory stays at one table plus the sample however long the stream is, and only rows that
    can still enter the sample are copied. Kept rows stay in stream order.
    """
    rng = np.random.default_rng(seed)
    kept: pa.Table | None = None
    kept_keys = np.empty(0)
    seen = 0
    for table in tables:
        seen += table.num_rows
        keys = rng.random(table.num_rows)
        if kept is not None and kept.num_rows >= rows:
            useful = keys < kept_keys.max()
            table, keys = table.filter(pa.array(useful)), keys[useful]
        if table.num_rows == 0:
            continue
        combined = table if kept is None else pa.concat_tables([kept, table])
        all_keys = np.concatenate([kept_keys, keys])
        if combined.num_rows > rows:
            pick = np.sort(np.argpartition(all_keys, rows - 1)[:rows])
            combined, all_keys = combined.take(pa.array(pick)), all_keys[pick]
        kept, kept_keys = combined.combine_chunks(), all_keys
    return kept, seen


def evidently_frame(frame: pd.DataFrame, config: DatasetConfig) -> pd.DataFrame:
    """Feature columns typed the way Evidently reads them: float64 and plain text."""
    data = {}
    for feature in config.features:
        column = frame[feature.name]
        if feature.type == "numeric":
            data[feature.name] = pd.to_numeric(column, errors="coerce").astype("float64")
        else:
            data[feature.name] = column.astype("object").where(column.notna(), None)
    return pd.DataFrame(data, index=frame.index)


def sample_interval(
    config: DatasetConfig, start: datetime, end: datetime, quarantined: set[str], rows: IntervalRows | None = None
) -> tuple[pd.DataFrame | None, int]:
    """Seeded sample of the interval's scored rows (parse failures and quarantined keys left out).
    rows: also keeps every row that parsed, from the same read, for the segments."""
    settings = config.drift

    excluded = pa.array(sorted(quarantined), type=pa.string())

    def scored_chunks():
        for chunk in read_interval(config.input_location(start, end), config, start, end):
            typed = chunk.typed  # Arrow: only the sampled rows are ever converted to pandas
            keep = np.ones(typed.num_rows, dtype=bool)
            if chunk.failures:
                keep[list(chunk.failures)] = False
            if rows is not None:
                rows.add(typed, keep)
            if len(excluded):
                keep &= ~pc.is_in(typed[config.entity_key], value_set=excluded).to_numpy(zero_copy_only=False)
            yield typed.select(config.feature_names).filter(pa.array(keep))

    sample, seen = sample_tables(scored_chunks(), settings.sample_rows, settings.seed)
    return (None if sample is None else sample.to_pandas()), seen


def run_report(config: DatasetConfig, reference: pd.DataFrame, current: pd.DataFrame):
    """The Evidently snapshot: one ValueDrift per feature and for the score, plus data quality.

    Data quality is DatasetStats (rows, missing, duplicated, empty and constant columns) and the
    missing count per column, not DataSummaryPreset: that preset draws per-column plots for both
    samples and took 4x as long as everything else in the report together (bench/monitor_drift.py).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MissingValueCount, ValueDrift
    from evidently.presets import DatasetStats

    settings = config.drift
    if SCORE_COLUMN in config.feature_names:
        raise DriftError(f"{config.path}: a feature is named {SCORE_COLUMN!r}, the column drift reports use for scores")
    metrics = [
        ValueDrift(column=name, method=method, threshold=threshold)
        for name, _, method, threshold in column_methods(config)
    ]
    metrics.append(
        ValueDrift(column=SCORE_COLUMN, method=settings.prediction_method, threshold=settings.trigger.prediction_drift)
    )
    metrics.append(DatasetStats())
    metrics.extend(MissingValueCount(column=name) for name in config.feature_names)
    definition = DataDefinition(
        numerical_columns=[*config.numeric_features, SCORE_COLUMN], categorical_columns=config.categorical_features
    )
    report = Report(metrics, include_tests=True)
    return report.run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )


def report_path(config: DatasetConfig, start: datetime, end: datetime) -> Path:
    return config.drift.reports_dir / f"drift_{start:%Y-%m-%dT%H%M}_{end:%Y-%m-%dT%H%M}.html"


def save_html(snapshot, path: Path) -> None:
    """Write the report atomically, so a browser never opens half of a rerun's file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    snapshot.save_html(str(partial))
    os.replace(partial, path)
