"""What one scoring attempt counts (rows, reasons, score stats, timings) and where it writes; the run
itself, and everything it does, is run.ScoringRun."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa

from driftline.config import DatasetConfig
from driftline.errors import BadInput
from driftline.scoring.safeguards import ScoreStats


class QuarantineBudgetExceeded(BadInput):
    """Too many rows were quarantined: quarantine is recorded, predictions are left as they were."""


@dataclass
class Counts:
    """What an attempt did so far, summed over chunks (or partitions): rows, reasons, score stats, timings."""

    rows_in: int = 0
    rows_scored: int = 0
    rows_quarantined: int = 0
    scoring_engine: str = ""
    distribution_check: str | None = None
    rows_explained: int | None = None  # [explain] on: rows whose reasons were stored
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stats: ScoreStats = field(default_factory=ScoreStats)

    def merge(
        self,
        rows_in: int,
        rows_scored: int,
        rows_quarantined: int,
        stage_seconds: dict,
        reasons: dict,
        stats: ScoreStats,
    ) -> None:
        """Fold in a part of the interval (a scored partition)."""
        self.rows_in += rows_in
        self.rows_scored += rows_scored
        self.rows_quarantined += rows_quarantined
        for stage, seconds in stage_seconds.items():
            self.stage_seconds[stage] += seconds  # summed over partitions: work, not wall time
        for code, count in reasons.items():
            self.reasons[code] += count
        self.stats.merge(stats)

    def over_budget(self, config: DatasetConfig, source_uri: str, partitions: int | None = None) -> str | None:
        """What is wrong when more than validation.quarantine_budget of the rows were quarantined, else None."""
        if not self.rows_quarantined > config.quarantine_budget * self.rows_in:
            return None
        over = f" over {partitions} partitions" if partitions else ""
        return (
            f"quarantine budget exceeded for {source_uri}: {self.rows_quarantined} of "
            f"{self.rows_in} rows ({self.rows_quarantined / self.rows_in:.1%}) failed validation{over}; "
            f"the budget is {config.quarantine_budget:.1%} (validation.quarantine_budget in {config.path.name}). "
            f"Top reasons: {_top_reasons(self.reasons)}."
        )

    def summary(self) -> dict:
        """The counts' part of a run summary (JSON-safe)."""
        return {
            "scoring_engine": self.scoring_engine,
            "rows_in": self.rows_in,
            "rows_scored": self.rows_scored,
            "rows_quarantined": self.rows_quarantined,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "quarantine_reasons": dict(self.reasons),
            "distribution_check": self.distribution_check,
            **({} if self.rows_explained is None else {"rows_explained": self.rows_explained}),
        }


@dataclass(frozen=True)
class Destination:
    """Where one scoring pass writes: prediction_rows under the attempt's key and, for a partition of a
    partitioned attempt, its partition number (the constant leading columns of each row)."""

    interval_id: int
    key: int
    partition: int | None = None
    table: str = "prediction_rows"

    @classmethod
    def interval(cls, interval_id: int, key: int) -> Destination:
        return cls(interval_id, key)

    @classmethod
    def staging(cls, interval_id: int, key: int, partition: int) -> Destination:
        return cls(interval_id, key, partition)

    @property
    def keys(self) -> dict[str, tuple[int, pa.DataType]]:
        """The constant columns: name -> (value, Arrow type)."""
        keys = {"run_key": (self.key, pa.int64())}
        if self.partition is not None:
            keys["partition"] = (self.partition, pa.int32())
        return keys

    @property
    def columns(self) -> list[str]:
        return [*self.keys, "entity_key", "score", "predicted_class"]

    @property
    def reason_keys(self) -> dict[str, int | None]:
        """The constant columns of its [explain] reason rows."""
        return {"run_key": self.key, "partition": self.partition}


def _top_reasons(reasons: dict[str, int], limit: int = 5) -> str:
    top = sorted(reasons.items(), key=lambda item: -item[1])[:limit]
    return ", ".join(f"{code} x{count}" for code, count in top) or "none"
