"""The parity gate: driftline's own scores of a sample (read, validated and scored exactly as
score_batch does) against the notebook's predictions for the same keys.

A row differs when |driftline - notebook| > tolerance ([handoff] parity_tolerance, default 1e-6,
absolute, on the score: the probability of the positive class for binary, the value for
regression). The gate passes only when every notebook row was scored and none differs. Messages
give counts and the size of the differences, never a key or a value.
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

    @property
    def passed(self) -> bool:
        return self.rows_compared > 0 and self.rows_not_scored == 0 and self.rows_differ == 0

    def summary(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def failure(self) -> str | None:
        """Why the gate failed (counts and sizes only), or None."""
        if self.passed:
            return None
        parts = []
        if self.rows_compared == 0:
            parts.append("no notebook prediction matched a scored row of the sample")
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


def compare(keys: np.ndarray, scores: np.ndarray, expected: pd.DataFrame, tolerance: float) -> Parity:
    """Pure: driftline's (keys, scores) against the notebook's frame of key, score."""
    ours = pd.Series(np.asarray(scores, dtype="float64"), index=pd.Index(np.asarray(keys).astype(str)))
    theirs = expected.set_index("key")["score"]
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
    )


def read_predictions(path: str, config: DatasetConfig) -> pd.DataFrame:
    """The notebook's predictions: a CSV or Parquet file with the entity key (named like the config's
    entity_key, or `key`) and `score`; keys as text, as score_batch reads them."""
    from pathlib import Path

    location = Path(path)
    try:
        frame = pd.read_parquet(location) if location.suffix == ".parquet" else pd.read_csv(location, dtype=str)
    except (OSError, ValueError) as exc:
        raise BadInput(f"{location}: cannot read the notebook's predictions: {type(exc).__name__}") from exc
    key = next((c for c in (config.entity_key, *KEY_COLUMNS) if c in frame.columns), None)
    if key is None or SCORE_COLUMN not in frame.columns:
        raise BadInput(
            f"{location}: the predictions file needs the columns {config.entity_key!r} (or 'key') and 'score'; "
            f"it has {list(frame.columns)}"
        )
    scores = pd.to_numeric(frame[SCORE_COLUMN], errors="coerce")
    if scores.isna().any():
        raise BadInput(f"{location}: {int(scores.isna().sum())} 'score' values are not numbers")
    keys = frame[key].astype(str)
    if keys.duplicated().any():
        raise BadInput(f"{location}: {int(keys.duplicated().sum())} keys appear more than once")
    return pd.DataFrame({"key": keys.to_numpy(), "score": scores.to_numpy(dtype="float64")})


def score_sample(config: DatasetConfig, model, location: str) -> tuple[np.ndarray, np.ndarray]:
    """(keys, scores) of the sample's valid rows, through score_batch's reader, suite and engine."""
    import pyarrow as pa

    from driftline.scoring.engine import Scorer
    from driftline.sources import read_interval
    from driftline.validation import Validator

    scorer, validator = Scorer(model, config), Validator(config)
    keys, scores = [], []
    for chunk in read_interval(location, config, *_ALL_TIME):
        failures = dict(chunk.failures)
        for index, codes in validator.row_failures(chunk.typed, location).items():
            failures.setdefault(index, []).extend(codes)
        good = np.ones(chunk.typed.num_rows, dtype=bool)
        good[list(failures)] = False
        rows = chunk.typed.filter(pa.array(good))
        keys.append(rows[config.entity_key].to_numpy(zero_copy_only=False).astype(str))
        scores.append(scorer.predict(rows))
    if not keys:
        return np.empty(0, dtype=str), np.empty(0)
    return np.concatenate(keys), np.concatenate(scores)
