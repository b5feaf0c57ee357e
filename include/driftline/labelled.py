"""Labelled data as training, validation and realized performance read it: the history table typed
like scoring input, late labels as they arrive, and the published predictions they join."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

import numpy as np
import pandas as pd
from psycopg import sql

from driftline import db
from driftline.config import DatasetConfig
from driftline.errors import BadInput

log = logging.getLogger(__name__)


class TrainingError(BadInput):
    """Labelled data unusable for training; the message says what is missing."""


class LabelsError(BadInput):
    """The labels file lacks a column driftline joins on; the message names it."""


def read_table(location, config: DatasetConfig | None = None) -> pd.DataFrame:
    """Read a whole (small) labelled table (CSV, CSV.gz or Parquet) under the reading contract of
    sources.read_table: the config's columns typed as for scoring, its [source] encoding and
    null_values applied. Rows that fail reading (malformed lines, unparseable cells) are left out and
    counted in `frame.attrs["reading"]` (rows_in, left_out by reason code); no row data is logged.
    Without a config (ad-hoc use) the default reading options apply and every column is typed
    auto: numbers where every cell is one, else text."""
    from driftline.sources import InputMissingError, local_path
    from driftline.sources import read_table as read_whole_table
    from driftline.sources.objects import is_object_url

    # A SqlInput (a query or table), an object URL (s3://...) or a local path.
    local = isinstance(location, str) and not is_object_url(location)
    path = local_path(location) if local else location
    if local and not path.exists():
        raise TrainingError(f"labelled data not found: {path}")
    try:
        read = read_whole_table(location, config)
    except InputMissingError as exc:
        raise TrainingError(f"labelled data not found: {path}") from exc
    frame = read.clean()
    left_out = {code: count for code, count in read.reasons.items()}
    if left_out:
        log.warning(
            "%s: %d of %d rows left out while reading: %s",
            path,
            read.rows_in - len(frame),
            read.rows_in,
            ", ".join(f"{code} x{count}" for code, count in sorted(left_out.items())),
        )
    frame.attrs["reading"] = {"rows_in": read.rows_in, "left_out": left_out}
    return frame


def data_checksum(frame: pd.DataFrame) -> str:
    """sha256 over the rows' content, independent of file format."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


_TRUE, _FALSE = {"1", "1.0", "true"}, {"0", "0.0", "false"}


def _blank(values: pd.Series, strip: bool = True) -> pd.Series:
    """Missing cells: null, NaN or empty text; with strip, also text that is only whitespace (a ' '
    cell in a numeric column of a CSV export). A category of spaces is a category, not missing."""
    text = values.astype("string")
    return (values.isna() | ((text.str.strip() if strip else text) == "")).fillna(True).astype(bool)


def target_values(config: DatasetConfig, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(target as float, reason code per unusable cell or <NA>) for the dataset's task.

    binary: 0/1/true/false (any case), bool, and with [dataset] positive_label set, that value is 1
    and every other value 0. regression: a number. Blank cells are missing. Already mapped values
    (0.0/1.0) map to themselves, so rows from history and from the labels file can be mixed.
    """
    blank = _blank(values)
    reasons = pd.Series(pd.NA, index=values.index, dtype="string")
    reasons[blank] = f"missing:{config.target}"
    text = values.astype("string").str.strip()
    if config.task == "binary":
        lowered = text.str.lower()
        mapped = pd.Series(np.nan, index=values.index, dtype="float64")
        mapped[lowered.isin(_TRUE).fillna(False).to_numpy()] = 1.0
        mapped[lowered.isin(_FALSE).fillna(False).to_numpy()] = 0.0
        if config.positive_label is not None:
            other = (~blank & mapped.isna()).to_numpy()
            mapped[other] = np.where((text[other] == config.positive_label).to_numpy(), 1.0, 0.0)
        bad = ~blank & mapped.isna()
        reasons[bad] = f"not_a_label:{config.target}"
        return mapped, reasons
    numbers = pd.to_numeric(text.where(~blank), errors="coerce").astype("float64")
    bad = ~blank & numbers.isna()
    reasons[bad] = f"not_a_number:{config.target}"
    return numbers, reasons


def usable_rows(config: DatasetConfig, history: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """(typed labelled rows in a stable order, {"total": rows left out, "reasons": {code: rows}}).

    The same rules as scoring: a blank cell is missing, which a nullable feature may be; a row whose
    target is missing or not a label, whose event time does not parse, or whose non-nullable feature
    is missing or not a number is left out and counted under a reason code (column names only).
    """
    required = [config.event_time, config.target, *config.feature_names]
    missing = [c for c in required if c not in history.columns]
    if missing:
        raise TrainingError(f"labelled history lacks column(s) {missing} required by {config.path.name}")
    history = history.copy()
    reasons: list[pd.Series] = []
    history[config.target], target_reasons = target_values(config, history[config.target])
    reasons.append(target_reasons)
    if config.task == "binary" and config.positive_label is None:
        unlabelled = int((target_reasons == f"not_a_label:{config.target}").sum())
        if unlabelled > (len(history) - int(_blank(history[config.target]).sum())) / 2:
            raise TrainingError(
                f"column {config.target!r} holds values other than 0/1/true/false in {unlabelled} of "
                f"{len(history)} rows: set [dataset] positive_label in {config.path.name} to the value that means "
                'the positive class (e.g. positive_label = "Yes")'
            )
    elif config.task == "binary" and not (history[config.target] == 1.0).any() and len(history):
        raise TrainingError(
            f"no row of column {config.target!r} is the positive class: [dataset] positive_label = "
            f"{config.positive_label!r} in {config.path.name} never occurs (check its spelling and case)"
        )
    times = history[config.event_time]
    # Text times parse as ISO 8601, as when scoring (not in a format guessed from the first row).
    text_times = not pd.api.types.is_datetime64_any_dtype(times)
    parsed = pd.to_datetime(
        times.where(~_blank(times)), utc=True, errors="coerce", format="ISO8601" if text_times else None
    )
    reasons.append(
        pd.Series(
            np.where(parsed.isna(), f"unparseable_timestamp:{config.event_time}", None),
            index=history.index,
            dtype="string",
        )
    )
    history[config.event_time] = parsed
    for feature in config.features:
        values = history[feature.name]
        blank = _blank(values)
        if feature.type == "numeric":
            numbers = pd.to_numeric(values.where(~blank), errors="coerce").astype("float64")
            reasons.append(
                pd.Series(
                    np.where(~blank & numbers.isna(), f"not_a_number:{feature.name}", None),
                    index=history.index,
                    dtype="string",
                )
            )
            history[feature.name] = numbers
        else:
            blank = _blank(values, strip=False)
            history[feature.name] = values.astype("string").where(~blank)
        if not feature.nullable:
            reasons.append(
                pd.Series(np.where(blank, f"missing:{feature.name}", None), index=history.index, dtype="string")
            )
    excluded = pd.Series(False, index=history.index)
    counts: dict[str, int] = {}
    for codes in reasons:
        present = codes.notna().to_numpy()
        excluded |= present
        for code, count in codes[present].value_counts().items():
            counts[code] = counts.get(code, 0) + int(count)
    history = history[~excluded.to_numpy()]
    summary = {"total": int(excluded.sum()), "reasons": dict(sorted(counts.items()))}
    if len(history) < 100:
        left_out = f" ({summary['total']} left out: {summary['reasons']})" if counts else ""
        raise TrainingError(f"only {len(history)} usable labelled rows{left_out}; need at least 100 to train")
    ordered = history.sort_values([config.event_time, config.entity_key], kind="stable").reset_index(drop=True)
    return ordered, summary


def labelled_rows(config: DatasetConfig, history: pd.DataFrame) -> pd.DataFrame:
    """Typed labelled rows in a stable order (event time, then key), so a split is reproducible;
    unusable rows left out (see usable_rows, which also counts them)."""
    return usable_rows(config, history)[0]


SPLIT_SEED = 42


def holdout_split(config: DatasetConfig, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(rows to fit on, rows to evaluate on, how they were split) of labelled_rows output.

    By event time when the rows have a time order at the split point: the newest holdout_fraction,
    the cut moved to the nearest change of event time when rows share the time at it (the holdout
    then stays within half to twice holdout_fraction, so no holdout row is as old as a training
    row). Otherwise (e.g. an export whose rows all share one event time) a seeded split, stratified
    by label for binary tasks, and the record says so and why.
    """
    fraction, n = config.holdout_fraction, len(rows)
    times = rows[config.event_time].to_numpy()
    target = int(n * (1 - fraction))
    # Positions where the event time changes: a cut there has every training row older than every holdout row.
    changes = np.flatnonzero(times[1:] != times[:-1]) + 1
    allowed = changes[(n - changes >= max(1, fraction / 2 * n)) & (n - changes <= min(2 * fraction, 0.5) * n)]
    if 0 < target < n and times[target - 1] != times[target]:
        cut, moved = target, False
    elif len(allowed):
        cut, moved = int(allowed[np.argmin(np.abs(allowed - target))]), True
    else:
        return _seeded_split(config, rows)
    description = f"oldest {cut / n:.0%} by event time trained on, newest {1 - cut / n:.0%} own holdout"
    if moved:
        description += f" (cut moved from {1 - fraction:.0%} to where the event time changes)"
    return rows.iloc[:cut], rows.iloc[cut:], {"method": "event_time", "description": description}


def _seeded_split(config: DatasetConfig, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    from sklearn.model_selection import train_test_split

    labels = rows[config.target].to_numpy()
    classes, counts = np.unique(labels, return_counts=True)
    stratify = labels if config.task == "binary" and len(classes) == 2 and counts.min() >= 2 else None
    train_at, holdout_at = train_test_split(
        np.arange(len(rows)), test_size=config.holdout_fraction, random_state=SPLIT_SEED, stratify=stratify
    )
    reason = (
        f"no time order at the split point: the rows share event times across the newest "
        f"{config.holdout_fraction:.0%}, so a split by event time would be arbitrary"
    )
    how = "stratified by label" if stratify is not None else "not stratified (regression, or a class under 2 rows)"
    log.warning("%s: %s; using a seeded random split (seed %d), %s", config.path.name, reason, SPLIT_SEED, how)
    description = (
        f"seeded random split (seed {SPLIT_SEED}, {how}): {1 - config.holdout_fraction:.0%} trained on, "
        f"{config.holdout_fraction:.0%} own holdout, because there is {reason}"
    )
    record = {"method": "seeded_random", "stratified": stratify is not None, "seed": SPLIT_SEED, "reason": reason}
    return rows.iloc[np.sort(train_at)], rows.iloc[np.sort(holdout_at)], {**record, "description": description}


def read_labels(config: DatasetConfig, as_of: datetime) -> pd.DataFrame:
    """Labels observed by as_of, the latest observation per entity key: (key, target, observed_at)."""
    columns = [config.entity_key, config.labels_target_column, "observed_at"]
    try:
        labels = read_table(config.resolve_location(config.labels_uri), config)
    except TrainingError:
        return pd.DataFrame(columns=[config.entity_key, config.target, "observed_at"])  # no label has arrived yet
    missing = [c for c in columns if c not in labels.columns]
    if missing:
        raise LabelsError(
            f"labels file {config.resolve_location(config.labels_uri)} lacks column(s) {missing} "
            f"([source] labels in {config.path.name} needs the entity key, the label column ([source] label_column, "
            "default: the target's name) and observed_at)"
        )
    # The label under the target's name, as 0/1 (binary, [dataset] positive_label) or a number; a
    # blank or unparseable label counts as not arrived.
    labels = labels[columns].rename(columns={config.labels_target_column: config.target})
    labels[config.target] = target_values(config, labels[config.target])[0]
    labels[config.entity_key] = labels[config.entity_key].astype("string")
    labels["observed_at"] = pd.to_datetime(labels["observed_at"], utc=True)
    labels = labels[labels["observed_at"] <= pd.Timestamp(as_of)].dropna(subset=[config.target])
    labels = labels.sort_values("observed_at", kind="stable").drop_duplicates(config.entity_key, keep="last")
    return labels.reset_index(drop=True)


def interval_predictions(conn, schema: str, start: datetime, end: datetime) -> pd.DataFrame:
    """(entity_key, score) of the interval's published predictions."""
    rows = conn.execute(
        sql.SQL("SELECT entity_key, score FROM {} WHERE interval_start = %s AND interval_end = %s").format(
            db.table(schema, "predictions")
        ),
        (start, end),
    ).fetchall()
    return pd.DataFrame(rows, columns=["entity_key", "score"]).astype({"entity_key": "string", "score": "float64"})
