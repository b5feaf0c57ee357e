"""drift.segments as it was before the segments took the interval's rows from monitor_interval's one
read: the oracle the new code is held to (unit: any interval; integration: the stored rows)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from driftline.drift.segments import _performance, assign, drifted_count, in_segment, segment_totals, stored


def frame_before(config, tables: list[pa.Table], predictions: pd.DataFrame) -> pd.DataFrame:
    """segments.interval_frame before the one-read change (the parse failures already filtered out)."""
    frame = pa.concat_tables(tables).to_pandas()
    frame[config.entity_key] = frame[config.entity_key].astype(str)
    scores = predictions.rename(columns={"entity_key": config.entity_key})
    return frame.drop_duplicates(config.entity_key, keep="last").merge(scores, on=config.entity_key, how="inner")


def rows_before(config, ctx: dict, kept: dict, frame: pd.DataFrame) -> tuple[list[tuple], list[tuple]]:
    """segments.segment_rows before the one-read change, on interval_frame's frame."""
    settings_ = config.monitoring
    reference, labels = ctx["reference"], ctx["labels"]
    labelled = frame.merge(labels, on=config.entity_key, how="inner") if len(labels) else frame.iloc[:0]
    intervals, estimates = [], []
    for column in settings_.segments:
        segments = assign(frame[column], kept[column])
        ref_segments = assign(reference[column], kept[column])
        label_segments = assign(labelled[column], kept[column]) if len(labelled) else pd.Series([], dtype=str)
        totals = segment_totals(segments, frame["score"].to_numpy())
        for value, row in totals.iterrows():
            current = frame[in_segment(segments, value)]
            ref = reference[in_segment(ref_segments, value)]
            if len(current) >= settings_.min_segment_rows and len(ref) >= settings_.min_segment_rows:
                sample = current.sample(min(len(current), config.drift.sample_rows), random_state=config.drift.seed)
                drifted, note = drifted_count(config, sample, ref, column), None
            else:
                drifted = None
                note = (
                    f"drift not tested: {len(current)} interval rows, {len(ref)} reference rows "
                    f"(min_segment_rows {settings_.min_segment_rows})"
                )
            intervals.append(
                (
                    ctx["start"],
                    ctx["end"],
                    ctx["version"],
                    ctx["run_id"],
                    column,
                    *stored(value),
                    int(row["rows"]),
                    row["prediction_mean"],
                    drifted,
                    note,
                )
            )
            estimates.extend(
                _performance(config, ctx, column, value, current, labelled[in_segment(label_segments, value)])
            )
    return intervals, estimates


def same(a, b) -> bool:
    """Equal, NaN equal to NaN (a segment's estimate can be NaN): exact, not approximate."""
    import math

    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b
