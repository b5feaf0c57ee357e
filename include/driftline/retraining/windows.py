"""Which labelled rows retrain_model trains and judges on: the training window (anchored in the data,
never the wall clock), the window's rows from history and scored inputs with late labels, and the
fair holdout neither model trained on."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from driftline import db
from driftline.config import DatasetConfig
from driftline.db.runs import published_intervals
from driftline.intervals import utc
from driftline.labelled import TrainingError, interval_predictions, read_labels, read_table
from driftline.retraining.errors import RetrainingError


def trigger_interval_end(interval: Any) -> datetime | None:
    """The end of the interval a trigger (monitor_drift conf) names: {"end": ...}, [start, end] or an ISO string."""
    if isinstance(interval, dict):
        return utc(interval.get("end") or interval.get("interval_end"))
    if isinstance(interval, (list, tuple)) and len(interval) == 2:
        return utc(interval[1])
    if isinstance(interval, (str, datetime)):
        return utc(interval)
    return None


def resolve_window(
    config: DatasetConfig, start: datetime | str | None, end: datetime | str | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """[start, end) of labelled rows to train on: given, else the retraining.training_days before end.

    train_candidate always passes an end anchored in the data (given, the trigger interval's end or
    newest_labelled_event), so a deployment on 2024 data trains on 2024 rows without flags; `now`
    is only the fallback of a caller that has none."""
    end = utc(end) or now or datetime.now(timezone.utc)
    start = utc(start) or end - timedelta(days=config.retraining.training_days)
    if start >= end:
        raise RetrainingError(f"training window start {start.isoformat()} is not before its end {end.isoformat()}")
    return start, end


def newest_labelled_event(conn, config: DatasetConfig, as_of: datetime) -> datetime | None:
    """Just after the newest event with a label observed by as_of: the history source's newest row, or
    the end of the newest published interval with a labelled prediction. None when there is no data."""
    newest = None
    try:
        history = read_table(config.resolve_location(config.history_uri))
    except TrainingError:
        history = None
    if history is not None and config.event_time in history.columns and len(history):
        times = pd.to_datetime(history[config.event_time], utc=True).dropna()
        if len(times):
            newest = times.max().to_pydatetime() + timedelta(microseconds=1)  # the window's end is exclusive
    labels = read_labels(config, as_of)
    if len(labels):
        keys = set(labels[config.entity_key])
        for start, end, _, _ in reversed(published_intervals(conn, config.db_schema)):
            if newest is not None and end <= newest:
                break
            if keys & set(interval_predictions(conn, config.db_schema, start, end)["entity_key"]):
                newest = end
                break
    return newest


def scored_input_rows(conn, config: DatasetConfig, start: datetime, end: datetime) -> pd.DataFrame:
    """The interval's input rows that were scored (typed, without label): quarantined rows have no prediction."""
    from driftline.sources import read_interval

    scored = set(interval_predictions(conn, config.db_schema, start, end)["entity_key"])
    frames = []
    for chunk in read_interval(config.input_location(start, end), config, start, end):
        frames.append(chunk.frame[chunk.frame[config.entity_key].isin(scored)])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=config.input_columns)


def labelled_window(conn, config: DatasetConfig, start: datetime, end: datetime, as_of: datetime) -> pd.DataFrame:
    """Labelled rows with event time in [start, end): the history source plus scored inputs whose labels arrived."""
    history = read_table(config.resolve_location(config.history_uri), config)
    history[config.event_time] = pd.to_datetime(history[config.event_time], utc=True)
    history[config.entity_key] = history[config.entity_key].astype("string")
    parts = [history]
    labels = read_labels(config, as_of)
    for interval_start, interval_end, _, _ in published_intervals(conn, config.db_schema, start, end):
        rows = scored_input_rows(conn, config, interval_start, interval_end)
        labelled = rows.merge(labels[[config.entity_key, config.target]], on=config.entity_key, how="inner")
        if len(labelled):
            parts.append(labelled)
    frame = pd.concat(parts, ignore_index=True)
    times = frame[config.event_time]
    frame = frame[(times >= pd.Timestamp(start)) & (times < pd.Timestamp(end))]
    # A row both in history and in a scored input counts once (the scored copy carries the late label).
    frame = frame.drop_duplicates(config.entity_key, keep="last")
    return frame[[config.entity_key, config.event_time, config.target, *config.feature_names]].reset_index(drop=True)


def connect(config: DatasetConfig, autocommit: bool = True):
    """A connection to the dataset's database with its schema ensured (the caller closes it)."""
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    conn = db.connect(url, autocommit=autocommit)
    try:
        db.ensure_schema(conn, config.db_schema)
    except BaseException:
        conn.close()
        raise
    return conn


def trained_until(manifest: dict | None) -> pd.Timestamp | None:
    """The newest event time a model trained on (its manifest's training_window.end), or None."""
    end = ((manifest or {}).get("training_window") or {}).get("end")
    return pd.Timestamp(end).tz_convert("UTC") if end else None


# Below this many rows a holdout metric is noise: the scaled minimum never goes lower (unless
# retraining.min_holdout_rows itself is lower).
HOLDOUT_FLOOR = 30


def required_holdout_rows(config: DatasetConfig, window_rows: int) -> int:
    """The fair holdout's minimum size, scaled to the data: retraining.min_holdout_rows, or half the
    holdout a window of window_rows labelled rows gives (holdout_fraction x rows / 2) when that is
    smaller, but not below HOLDOUT_FLOOR rows. 569 rows at holdout_fraction 0.2: 57, not 200."""
    scaled = max(HOLDOUT_FLOOR, math.ceil(config.holdout_fraction * window_rows / 2))
    return min(config.retraining.min_holdout_rows, scaled)


def fair_holdout(
    config: DatasetConfig,
    rows: pd.DataFrame,
    candidate_version: int,
    candidate_trained_until: pd.Timestamp,
    champion_version: int | None,
    champion_trained_until: pd.Timestamp | None,
) -> tuple[pd.DataFrame, dict, str | None]:
    """The labelled rows neither model trained on: event time after both training ends.

    rows: labelled_rows output of the candidate's window. Returns (holdout, bounds with the reason
    they were chosen, failure or None); the failure says why there is no fair comparison, and then
    nothing should be compared on seen rows.
    """
    times = rows[config.event_time]
    candidate_at = f"{candidate_trained_until:%Y-%m-%d %H:%M:%S}"
    if champion_version is not None and champion_trained_until is None:
        failure = (
            f"no fair holdout: champion v{champion_version}'s manifest records no training window, so the rows it "
            "trained on cannot be told apart"
        )
        return rows.iloc[:0], {"rows": 0, "start": None, "end": None, "after": None, "reason": failure}, failure
    if champion_version is None or champion_trained_until <= candidate_trained_until:
        cut, whose = candidate_trained_until, f"candidate v{candidate_version}'s training end"
        why = f"rows after {whose} {candidate_at}" + (
            " (no champion to compare with)"
            if champion_version is None
            else f"; champion v{champion_version} trained until {champion_trained_until:%Y-%m-%d %H:%M:%S}, earlier"
        )
    else:
        cut, whose = champion_trained_until, f"champion v{champion_version}'s training end"
        why = (
            f"rows after {whose} {champion_trained_until:%Y-%m-%d %H:%M:%S}, later than candidate "
            f"v{candidate_version}'s {candidate_at}"
        )
    holdout = rows[times > cut]
    bounds = {
        "rows": int(len(holdout)),
        "start": holdout[config.event_time].min().isoformat() if len(holdout) else None,
        "end": holdout[config.event_time].max().isoformat() if len(holdout) else None,
        "after": cut.isoformat(),
        "reason": why + ": neither model trained on them",
    }
    minimum = required_holdout_rows(config, len(rows))
    if len(holdout) < minimum:
        failure = (
            f"no fair holdout: {len(holdout)} rows after the {'champion' if whose.startswith('champion') else 'candidate'}'s "
            f"training end ({whose} {cut:%Y-%m-%d %H:%M:%S}); {minimum} needed (retraining.min_holdout_rows = "
            f"{config.retraining.min_holdout_rows}, scaled to the window's {len(rows)} labelled rows); "
            "not compared on rows a model trained on. Retrain with a later window end once labels arrive"
        )
        return holdout, bounds, failure
    return holdout, bounds, None
