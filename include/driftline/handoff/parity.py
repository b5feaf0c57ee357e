"""The parity gate: driftline's own scores of a sample (read, validated and scored exactly as
score_batch does) against the notebook's predictions for the same keys.

A row differs when |driftline - notebook| > tolerance ([handoff] parity_tolerance, default 1e-6,
absolute, on the score: the probability of the positive class for binary, the value for
regression). The gate passes only when every notebook row was scored, none differs, and at least
[handoff] parity_min_rows rows (default 100) were compared: a handful of rows proves little.

Rows match on the entity key, or on (entity key, event time) when the predictions carry the config's
event time column: a whole history (no --sample) holds the same key at many times. Messages give
counts and the size of the differences, never a key or a value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from driftline.config import DatasetConfig
from driftline.errors import BadInput, BadModel

# read_interval filters rows by event time; a parity sample is not an interval, so every time is inside.
_ALL_TIME = (datetime(1678, 1, 1, tzinfo=timezone.utc), datetime(2261, 12, 31, tzinfo=timezone.utc))
KEY_COLUMNS = ("key",)
SCORE_COLUMN = "score"
TIME_COLUMN = "event_time"  # read_predictions' name for the config's event time column, when given


class ParityError(BadModel):
    """driftline does not reproduce the notebook's predictions; nothing is registered."""


@dataclass(frozen=True)
class Parity:
    rows_expected: int  # notebook predictions given
    rows_compared: int  # of them, scored by driftline
    rows_not_scored: int  # absent from the sample or quarantined by validation
    rows_differ: int
    max_abs_diff: float
    median_abs_diff: float
    tolerance: float
    min_rows: int = 1  # [handoff] parity_min_rows

    @property
    def passed(self) -> bool:
        return self.rows_compared >= max(self.min_rows, 1) and self.rows_not_scored == 0 and self.rows_differ == 0

    def summary(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def failure(self) -> str | None:
        """Why the gate failed (counts and sizes only), or None."""
        if self.passed:
            return None
        parts = []
        if self.rows_compared == 0:
            parts.append("no notebook prediction matched a scored row of the sample")
        elif self.rows_compared < self.min_rows:
            parts.append(
                f"only {self.rows_compared} rows were compared, and the gate needs at least {self.min_rows} "
                "([handoff] parity_min_rows): give the notebook's predictions (and --sample rows) for more rows"
            )
        if self.rows_not_scored:
            parts.append(
                f"{self.rows_not_scored} of {self.rows_expected} notebook rows were not scored by driftline "
                "(absent from the sample, or quarantined by validation: see the suite)"
            )
        if self.rows_differ:
            parts.append(
                f"{self.rows_differ} of {self.rows_compared} rows differ by more than {self.tolerance:g} "
                f"(max abs diff {self.max_abs_diff:.3g}, median abs diff {self.median_abs_diff:.3g})"
            )
        return "; ".join(parts)


def compare(
    keys: np.ndarray,
    scores: np.ndarray,
    expected: pd.DataFrame,
    tolerance: float,
    *,
    times: np.ndarray | None = None,
    min_rows: int = 1,
    where: str = "the parity sample",
) -> Parity:
    """Pure: driftline's (keys, scores) against the notebook's frame of key, score (and event_time).

    Rows match on (key, event time) when times is given and expected has an event_time column, else
    on the key alone, which must then be unique in the sample (BadInput otherwise, with the count)."""
    by_time = times is not None and TIME_COLUMN in expected.columns
    ours_index = _row_index(keys, times if by_time else None)
    theirs_index = _row_index(expected["key"].to_numpy(), expected[TIME_COLUMN].to_numpy() if by_time else None)
    repeated = int(ours_index.duplicated().sum())
    if repeated:
        matched_on = "entity key and event time" if by_time else "entity key"
        raise BadInput(
            f"{where}: {repeated} rows repeat an {matched_on} of another row, so the notebook's predictions cannot be "
            "matched to one row each. Pass --sample with the rows the notebook predicted (one row per key)"
            + ("" if by_time else ", or add the event time column to the predictions file to match on both")
        )
    ours = pd.Series(np.asarray(scores, dtype="float64"), index=ours_index)
    theirs = pd.Series(expected["score"].to_numpy(dtype="float64"), index=theirs_index)
    found = theirs.index.isin(ours.index)
    gaps = np.abs(ours.reindex(theirs.index[found]).to_numpy() - theirs[found].to_numpy(dtype="float64"))
    gaps = np.where(np.isnan(gaps), np.inf, gaps)  # NaN on one side only (or both) is a difference
    return Parity(
        rows_expected=int(len(theirs)),
        rows_compared=int(found.sum()),
        rows_not_scored=int((~found).sum()),
        rows_differ=int((gaps > tolerance).sum()),
        max_abs_diff=float(gaps.max()) if len(gaps) else 0.0,
        median_abs_diff=float(np.median(gaps)) if len(gaps) else 0.0,
        tolerance=float(tolerance),
        min_rows=int(min_rows),
    )


def _row_index(keys: np.ndarray, times: np.ndarray | None) -> pd.Index:
    """Keys as text (as score_batch reads them), paired with UTC nanoseconds when times are given."""
    text = pd.Index(np.asarray(keys).astype(str))
    if times is None:
        return text
    instants = pd.DatetimeIndex(pd.to_datetime(times, utc=True)).as_unit("ns").asi8
    return pd.MultiIndex.from_arrays([text, instants])


def read_predictions(path: str, config: DatasetConfig) -> pd.DataFrame:
    """The notebook's predictions: a CSV or Parquet file with the entity key (named like the config's
    entity_key, or `key`), `score`, and optionally the config's event time column (then rows match on
    key and time); keys as text, as score_batch reads them."""
    from pathlib import Path

    location = Path(path)
    try:
        frame = pd.read_parquet(location) if location.suffix == ".parquet" else pd.read_csv(location, dtype=str)
    except (OSError, ValueError) as exc:
        raise BadInput(f"{location}: cannot read the notebook's predictions: {type(exc).__name__}") from exc
    key = next((c for c in (config.entity_key, *KEY_COLUMNS) if c in frame.columns), None)
    if key is None or SCORE_COLUMN not in frame.columns:
        expected = (config.entity_key, *KEY_COLUMNS, SCORE_COLUMN, config.event_time)
        # Only names driftline expects are echoed: a file without a header has a key and a score as its "names".
        known = sorted({str(c) for c in frame.columns} & set(expected))
        raise BadInput(
            f"{location}: the predictions file needs a header row with the columns {config.entity_key!r} (or 'key') "
            f"and 'score' (optionally {config.event_time!r}); it has {len(frame.columns)} columns"
            + (f", of which these are expected: {known}" if known else ", none named as expected")
        )
    scores = pd.to_numeric(frame[SCORE_COLUMN], errors="coerce")
    if scores.isna().any():
        raise BadInput(f"{location}: {int(scores.isna().sum())} 'score' values are not numbers")
    result = pd.DataFrame({"key": frame[key].astype(str).to_numpy(), "score": scores.to_numpy(dtype="float64")})
    identity = ["key"]
    if config.event_time in frame.columns:
        times = pd.to_datetime(frame[config.event_time], utc=True, errors="coerce", format="ISO8601")
        if times.isna().any():
            raise BadInput(
                f"{location}: {int(times.isna().sum())} {config.event_time!r} values are not ISO dates or times"
            )
        result[TIME_COLUMN] = times.to_numpy()
        identity.append(TIME_COLUMN)
    repeated = int(result.duplicated(identity).sum())
    if repeated:
        what = "keys" if len(identity) == 1 else f"(key, {config.event_time}) pairs"
        raise BadInput(f"{location}: {repeated} {what} appear more than once")
    return result


def score_sample(config: DatasetConfig, model, location: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, scores, event times) of the sample's valid rows, through score_batch's reader, suite and engine."""
    import pyarrow as pa

    from driftline.scoring.engine import Scorer
    from driftline.sources import read_interval
    from driftline.validation import Validator

    scorer, validator = Scorer(model, config), Validator(config)
    keys, scores, times = [], [], []
    for chunk in read_interval(location, config, *_ALL_TIME):
        failures = dict(chunk.failures)
        for index, codes in validator.row_failures(chunk.typed, location).items():
            failures.setdefault(index, []).extend(codes)
        good = np.ones(chunk.typed.num_rows, dtype=bool)
        good[list(failures)] = False
        rows = chunk.typed.filter(pa.array(good))
        keys.append(rows[config.entity_key].to_numpy(zero_copy_only=False).astype(str))
        times.append(pd.to_datetime(rows[config.event_time].to_pandas(), utc=True).to_numpy())
        scores.append(scorer.predict(rows))
    if not keys:
        return np.empty(0, dtype=str), np.empty(0), np.empty(0, dtype="datetime64[ns]")
    return np.concatenate(keys), np.concatenate(scores), np.concatenate(times)
