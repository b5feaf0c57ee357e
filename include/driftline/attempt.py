"""One scoring attempt of an interval (what it is, what it counted) and the steps both scoring paths share:
choosing the model, the quarantine-budget check, publishing, recording the run."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

import pyarrow as pa

from driftline.alerts import raise_alert
from driftline.config import DatasetConfig
from driftline.db import runs
from driftline.errors import BadInput, safe_message
from driftline.registry import CompiledHashes, ModelLoadError, fallback_versions, load_model, version_for_interval
from driftline.scoring.engine import Scorer
from driftline.scoring.features import FeatureMismatch, bind
from driftline.scoring.safeguards import ScoreStats, check_distribution

log = logging.getLogger(__name__)


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


@dataclass
class Attempt:
    """One attempt at scoring the interval [start, end).

    `key` is the attempt's number (the run_key column of scoring_runs, prediction_rows and
    quarantine_rows); `run_id` is Airflow's DAG run that made the attempt. A rerun of the same DAG run
    is a new attempt with a new key. `counts` is None until the model is chosen: a failure before
    that records the attempt without counts.
    """

    config: DatasetConfig
    start: datetime
    end: datetime
    interval_id: int
    key: int
    run_id: str
    source_uri: str
    started_at: datetime
    model_version: int | None = None
    requested_version: int | None = None
    fallback_reason: str | None = None
    partition: int | None = None  # one partition of a partitioned attempt
    partitions: int | None = None  # a partitioned attempt being published: how many it has
    counts: Counts | None = None

    @property
    def schema(self) -> str:
        return self.config.db_schema

    @property
    def label(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"

    @property
    def destination(self) -> Destination:
        return Destination(self.interval_id, self.key, self.partition)

    def summary(self) -> dict:
        """Small, JSON-safe summary (what goes through XCom and into logs)."""
        counts = self.counts or Counts()
        return {
            "interval_start": self.start.isoformat(),
            "interval_end": self.end.isoformat(),
            "source_uri": self.source_uri,
            "model_version": self.model_version,
            "requested_version": self.requested_version,
            "fallback": self.fallback_reason is not None,
            "fallback_reason": self.fallback_reason,
            "scoring_engine": counts.scoring_engine,
            "rows_in": counts.rows_in,
            "rows_scored": counts.rows_scored,
            "rows_quarantined": counts.rows_quarantined,
            "stage_seconds": {k: round(v, 3) for k, v in counts.stage_seconds.items()},
            "quarantine_reasons": dict(counts.reasons),
            "distribution_check": counts.distribution_check,
            **({} if counts.rows_explained is None else {"rows_explained": counts.rows_explained}),
        }

    def alert(self, kind: str, severity: str, message: str, numbers: dict | None = None) -> int | None:
        """Raise an alert about this attempt (the DAG and task come from the alert origin the adapter sets)."""
        return raise_alert(
            self.config,
            kind,
            severity,
            message,
            numbers,
            run_id=self.run_id,
            interval_start=self.start,
            interval_end=self.end,
        )


def choose_model(conn, attempt: Attempt, pinned: int | None):
    """Load the attempt's model and set its model_version, requested_version and fallback_reason; a
    fallback raises a `fallback` alert.

    Default: the version that was champion when the interval ended, so a backfill rescores with the
    then-champion; the model_version Param pins one instead. When the wanted version cannot be
    loaded (artifact missing, sha256 mismatch, LightGBM refuses it) and safeguards.fallback is on,
    the most recent other champion that loads is used. A pinned version never falls back.

    The model's features are bound to the config's here (scoring.features.bind), so a config that
    does not match the model is refused before anything is read or planned; a fallback version
    trained on other features is skipped like one that cannot be loaded.
    """
    config, schema = attempt.config, attempt.schema
    requested = pinned if pinned is not None else version_for_interval(conn, schema, attempt.end)
    attempt.requested_version = requested
    try:
        model = load_model(conn, schema, requested, scoring_only=True)
    except ModelLoadError as first:
        if pinned is not None or not config.safeguards.fallback:
            why = "the version is pinned by model_version" if pinned is not None else "safeguards.fallback is off"
            raise ModelLoadError(f"{first}; no fallback because {why}; nothing was written") from first
        model = _fall_back(conn, attempt, requested, first)
    else:
        bind(model, config)  # FeatureMismatch (BadConfig): the config is wrong, an older model would not help
    attempt.model_version = model.version
    return model


def _fall_back(conn, attempt: Attempt, requested: int | None, first: ModelLoadError):
    tried = [f"v{requested}: {first}" if requested is not None else str(first)]
    for version in fallback_versions(conn, attempt.schema, exclude=requested):
        try:
            model = load_model(conn, attempt.schema, version, scoring_only=True)
            bind(model, attempt.config)
        except (ModelLoadError, FeatureMismatch) as exc:
            tried.append(f"v{version}: {exc}")
            continue
        reason = f"fell back to v{version}: " + " | ".join(tried)
        log.warning("model fallback for %s: %s", attempt.config.name, reason)
        attempt.alert("fallback", "warning", reason, {"requested_version": requested, "used_version": version})
        attempt.fallback_reason = reason
        return model
    raise ModelLoadError(
        f"no kept model version could be loaded, nothing was written; tried {len(tried)}: " + " | ".join(tried)
    ) from first


def make_scorer(conn, attempt: Attempt, model) -> Scorer:
    """The attempt's Scorer, its compiled objects checked against the registry; each untrusted
    artifact it refused (a cached object that does not match, an unsafe cache folder) is alerted."""
    scorer = Scorer(model, attempt.config, CompiledHashes(conn, attempt.schema))
    for notice in scorer.notices:
        attempt.alert("untrusted_artifact", "warning", notice, {"model_version": model.version})
    return scorer


def check_budget(attempt: Attempt) -> None:
    """Raise QuarantineBudgetExceeded when more than validation.quarantine_budget of the rows were quarantined."""
    config, counts = attempt.config, attempt.counts
    if not counts.rows_quarantined > config.quarantine_budget * counts.rows_in:
        return
    over = f" over {attempt.partitions} partitions" if attempt.partitions else ""
    raise QuarantineBudgetExceeded(
        f"quarantine budget exceeded for {attempt.source_uri}: {counts.rows_quarantined} of "
        f"{counts.rows_in} rows ({counts.rows_quarantined / counts.rows_in:.1%}) failed validation{over}; "
        f"the budget is {config.quarantine_budget:.1%} (validation.quarantine_budget in {config.path.name}). "
        f"Top reasons: {_top_reasons(counts.reasons)}. The quarantined rows are in "
        f"{attempt.schema}.quarantine_rows (run_key {attempt.key}); the interval's previous predictions are unchanged."
    )


def delete_replaced_predictions(conn, attempt: Attempt) -> None:
    """Inside the publishing transaction: delete the rows of the interval's earlier attempts, so
    prediction_rows holds each interval once (newer attempts are never touched)."""
    t = time.perf_counter()
    runs.delete_replaced_predictions(conn, attempt.schema, attempt.interval_id, attempt.key)
    attempt.counts.stage_seconds["delete_replaced_predictions"] += time.perf_counter() - t


def write_quarantine(conn, attempt: Attempt, spill: IO[bytes], published: bool) -> None:
    """Replace the interval's quarantine rows with the attempt's (spilled to a file while scoring)."""
    t = time.perf_counter()
    spill.seek(0)
    runs.replace_quarantine(conn, attempt.schema, attempt.interval_id, attempt.key, published, spill)
    attempt.counts.stage_seconds["write_quarantine"] += time.perf_counter() - t


def publish(conn, attempt: Attempt, score_reference: dict | None, spill: IO[bytes] | None = None) -> None:
    """Inside the caller's transaction: the interval-level checks (quarantine budget, score
    distribution), then make the attempt the interval's published one and record it.

    spill: the attempt's quarantined rows, for an attempt that scored in this transaction (its
    replaced predictions are deleted already); None for a partitioned attempt, whose rows are stored.
    Raising rolls the interval back to its previous contents.
    """
    counts = attempt.counts
    check_budget(attempt)
    t = time.perf_counter()
    counts.distribution_check = check_distribution(counts.stats, score_reference, attempt.config)
    counts.stage_seconds["check_distribution"] += time.perf_counter() - t
    if spill is not None:
        write_quarantine(conn, attempt, spill, published=True)
    else:
        t = time.perf_counter()
        delete_replaced_predictions(conn, attempt)
        runs.replace_quarantine(conn, attempt.schema, attempt.interval_id, attempt.key, published=True)
        counts.stage_seconds["publish_partitions"] += time.perf_counter() - t
        # An earlier publish of this plan that failed (and was recorded) gives way to this one.
        runs.delete_failed_runs(conn, attempt.schema, attempt.key)
    record(conn, attempt, "succeeded")
    runs.publish(conn, attempt.schema, attempt.interval_id, attempt.key)


def record(conn, attempt: Attempt, status: str, message: str | None = None) -> None:
    """The attempt's scoring_runs row: counts, stage timings, model and fallback, score stats."""
    config, counts = attempt.config, attempt.counts
    band = config.safeguards.review_band or (None, None)
    columns = dict(
        run_key=attempt.key,
        interval_id=attempt.interval_id,
        run_id=attempt.run_id,
        model_version=attempt.model_version,
        status=status,
        rows_in=counts.rows_in,
        rows_scored=counts.rows_scored,
        rows_quarantined=counts.rows_quarantined,
        stage_seconds={k: round(v, 4) for k, v in counts.stage_seconds.items()},
        source_uri=attempt.source_uri,
        message=message,
        started_at=attempt.started_at,
        requested_version=attempt.requested_version,
        fallback=attempt.fallback_reason is not None,
        fallback_reason=attempt.fallback_reason,
        score_stats=counts.stats.summary(config),
        review_low=band[0],
        review_high=band[1],
        scoring_engine=counts.scoring_engine or None,
    )
    if attempt.partitions is not None:
        columns["partitions"] = attempt.partitions
    runs.insert_run(conn, attempt.schema, **columns)


def record_failure(conn, attempt: Attempt, exc: BaseException) -> None:
    """Keep a failed attempt in the run summary (counts as far as it got); best effort, never hides
    the original error."""
    message = safe_message(exc)[:2000]  # scrubbed: run_summary is readable by analysts
    try:
        with conn.transaction():
            if attempt.counts is not None:
                record(conn, attempt, "failed", message)
            else:
                runs.insert_run(
                    conn,
                    attempt.schema,
                    run_key=attempt.key,
                    interval_id=attempt.interval_id,
                    run_id=attempt.run_id,
                    model_version=attempt.model_version,
                    status="failed",
                    source_uri=attempt.source_uri,
                    message=message,
                    started_at=attempt.started_at,
                )
    except Exception as failure:  # noqa: BLE001 - the original exception is what the caller must see
        log.warning("could not record the failed run for interval %s: %s", attempt.interval_id, safe_message(failure))


def _top_reasons(reasons: dict[str, int], limit: int = 5) -> str:
    top = sorted(reasons.items(), key=lambda item: -item[1])[:limit]
    return ", ".join(f"{code} x{count}" for code, count in top) or "none"
