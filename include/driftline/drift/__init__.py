"""monitor_drift as plain functions: reference sample -> interval sample -> Evidently report -> policy.

The reference (a seeded sample of the champion's training rows plus the model's own scores on them)
is built once per model version and stored as Parquet. Each interval is sampled while it streams
from its input file (the rows score_batch scored, never the whole interval in memory), compared
with the reference by Evidently 0.7, and its per-feature results, summary and HTML report replace
that interval's previous ones. The trigger policy then decides, with its reason and numbers, whether
to start retrain_model.

Evidently takes seconds to import: it is imported inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from psycopg.types.json import Jsonb

from driftline import db
from driftline.config import DatasetConfig, DriftPolicy, DriftSettings, load_config
from driftline.errors import BadInput, NotReady
from driftline.registry import LoadedModel, load_model
from driftline.scoring.engine import predict
from driftline.sources import read_interval

log = logging.getLogger(__name__)

# The model's score travels beside the features in both samples, under this column name.
SCORE_COLUMN = "model_score"
RETRAIN_DAG_ID = "retrain_model"
MIN_REFERENCE_ROWS = 100
# A retrain_model run queued longer than this (on an unpaused DAG) is stuck: it no longer blocks a trigger.
STALE_QUEUED_RETRAIN = timedelta(hours=6)


class IntervalNotScoredError(NotReady):
    """The interval has no published predictions yet (score_batch has not finished): worth a retry."""


class DriftError(BadInput):
    """Monitoring cannot run as configured; the message says what to fix."""


@dataclass(frozen=True)
class FeatureResult:
    column_name: str
    column_type: str  # numeric | categorical
    method: str
    statistic: float | None
    threshold: float | None
    drifted: bool  # Evidently's verdict for the method and threshold
    effect_size: float | None  # normed Wasserstein (numeric) or Jensen-Shannon distance (categorical)
    counted: bool  # drifted and effect_size >= effect_size_floor: what the policy counts


@dataclass(frozen=True)
class Decision:
    breach: bool
    trigger: bool
    reason: str
    numbers: dict


def _settings(config: DatasetConfig) -> DriftSettings:
    if config.drift is None:
        raise DriftError(f"{config.path}: no [drift] section; add one (see config/demo.toml)")
    return config.drift


def _utc(moment: datetime | str) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


# -- policy (pure) --------------------------------------------------------------------------------


def effect_size(reference: pd.Series, current: pd.Series, column_type: str) -> float | None:
    """How far apart two samples are, independent of sample size (None when either side is empty).

    Numeric: Wasserstein distance in units of the reference's standard deviation (Evidently's
    "wasserstein" statistic). Categorical: Jensen-Shannon distance (base 2, in [0, 1]) of the
    category frequencies, missing values counted as a category.
    """
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    if column_type == "numeric":
        ref = pd.to_numeric(reference, errors="coerce").dropna().to_numpy(dtype="float64")
        cur = pd.to_numeric(current, errors="coerce").dropna().to_numpy(dtype="float64")
        if len(ref) == 0 or len(cur) == 0:
            return None
        return float(wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001))
    ref_counts = reference.astype("object").fillna("<missing>").value_counts()
    cur_counts = current.astype("object").fillna("<missing>").value_counts()
    if ref_counts.empty or cur_counts.empty:
        return None
    categories = ref_counts.index.union(cur_counts.index)
    p = ref_counts.reindex(categories, fill_value=0).to_numpy(dtype="float64")
    q = cur_counts.reindex(categories, fill_value=0).to_numpy(dtype="float64")
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=2))


def counts_as_drift(drifted: bool, effect: float | None, floor: float) -> bool:
    """A drifted feature counts only when its effect size reaches the floor (p-values flag trivia at scale)."""
    return bool(drifted and effect is not None and effect >= floor)


def is_breach(policy: DriftPolicy, drifted_share: float, prediction_drift: float) -> bool:
    return drifted_share >= policy.drifted_share or prediction_drift >= policy.prediction_drift


def decide(
    policy: DriftPolicy,
    breach: bool,
    recent_breaches: list[bool],
    last_retrain_at: datetime | None,
    now: datetime,
    active_retrain_runs: int = 0,
    retrain_deployed: bool = True,
    numbers: dict | None = None,
    queued_retrain_runs: int = 0,
    retrain_paused: bool = False,
    last_trigger: tuple[datetime, str] | None = None,
) -> Decision:
    """Whether this interval starts a retrain, and why.

    recent_breaches: breach flags of the last `policy.window` monitored intervals, newest first,
    this one included. active_retrain_runs: running retrain_model runs; queued_retrain_runs: queued
    ones; last_trigger: (when, run id) of our newest trigger. Rules in order: breach now, k of the
    last n, no retrain running, no retrain queued (unless it waits on a paused DAG, said as such, or
    is older than STALE_QUEUED_RETRAIN), cooldown since the last retrain, retrain_model deployed.
    A paused retrain_model is named in the reason (`numbers["retrain_waiting"]`), never swallowed.
    """
    persisted = sum(bool(b) for b in recent_breaches[: policy.window])
    numbers = {
        **(numbers or {}),
        "breaches_in_window": persisted,
        "breaches_required": policy.breaches,
        "window": policy.window,
        "active_retrain_runs": active_retrain_runs,
        "queued_retrain_runs": queued_retrain_runs,
        "retrain_paused": retrain_paused,
        "last_retrain_at": last_retrain_at.isoformat() if last_retrain_at else None,
        "cooldown_hours": policy.cooldown_hours,
    }
    what = _breach_text(policy, numbers)
    if not breach:
        return Decision(False, False, f"no breach: {what}", numbers)
    if persisted < policy.breaches:
        return Decision(
            True,
            False,
            f"breach not persistent: {persisted} of the last {policy.window} intervals breached, "
            f"{policy.breaches} required ({what})",
            numbers,
        )
    if active_retrain_runs > 0:
        return Decision(True, False, f"breach, but a {RETRAIN_DAG_ID} run is already active ({what})", numbers)
    waiting = _waiting_text(queued_retrain_runs, retrain_paused, last_trigger, now)
    if waiting:
        numbers["retrain_waiting"] = waiting
    if queued_retrain_runs > 0 and retrain_paused:
        return Decision(True, False, f"breach, but {waiting}; unpause {RETRAIN_DAG_ID} to let it run ({what})", numbers)
    stale = last_trigger is not None and now - last_trigger[0] >= STALE_QUEUED_RETRAIN
    if queued_retrain_runs > 0 and not stale:
        return Decision(True, False, f"breach, but {waiting} (queued, not yet running) ({what})", numbers)
    if last_retrain_at is not None and now - last_retrain_at < timedelta(hours=policy.cooldown_hours):
        until = last_retrain_at + timedelta(hours=policy.cooldown_hours)
        return Decision(
            True,
            False,
            f"breach, but in cooldown: last retrain {last_retrain_at:%Y-%m-%d %H:%M} UTC, "
            f"no trigger before {until:%Y-%m-%d %H:%M} UTC ({what})",
            numbers,
        )
    if not retrain_deployed:
        return Decision(
            True, False, f"breach persisted, but DAG {RETRAIN_DAG_ID} is not deployed: decision recorded ({what})", numbers
        )
    if retrain_paused and not queued_retrain_runs:
        waiting = f"{RETRAIN_DAG_ID} is paused: the run triggered now will wait until it is unpaused"
        numbers["retrain_waiting"] = waiting
    note = f"; note: {waiting}" if waiting else ""
    return Decision(
        True,
        True,
        f"retrain: breach in {persisted} of the last {policy.window} intervals ({what}){note}",
        numbers,
    )


def _waiting_text(queued: int, paused: bool, last_trigger: tuple[datetime, str] | None, now: datetime) -> str | None:
    """What a queued retrain_model run is waiting for, in words (None when nothing is queued)."""
    if queued <= 0:
        return None
    run = (
        f"the run triggered on {last_trigger[0]:%Y-%m-%d %H:%M} UTC ({last_trigger[1]})"
        if last_trigger
        else f"{queued} queued run(s)"
    )
    if paused:
        return f"{RETRAIN_DAG_ID} is paused: {run} is waiting"
    if last_trigger is not None and now - last_trigger[0] >= STALE_QUEUED_RETRAIN:
        hours = STALE_QUEUED_RETRAIN.total_seconds() / 3600
        return f"{RETRAIN_DAG_ID} has queued {run} for more than {hours:g} h: counted as stuck, not as active"
    return f"a {RETRAIN_DAG_ID} run is waiting: {run}"


def interval_to_monitor(start: str | None, end: str | None, events: list[dict]) -> dict:
    """The interval a monitor_drift run covers: the manual run's Params, else its asset events' bounds.

    events: the triggering asset events' extra (score_batch's publish summary) with their partition
    key. A partitioned run carries the events of one interval; bounds that disagree are refused.
    """
    from driftline.errors import BadConfig

    if start or end:
        if not (start and end):
            raise BadConfig("a manual monitor_drift run needs both interval_start and interval_end (ISO 8601)")
        try:
            bounds = (_utc(start), _utc(end))
        except ValueError as exc:
            raise BadConfig(f"interval_start/interval_end are not ISO 8601 times: {exc}") from None
        if bounds[0] >= bounds[1]:
            raise BadConfig(f"interval_start {start} is not before interval_end {end}")
    else:
        found = {
            (_utc(e["interval_start"]), _utc(e["interval_end"]))
            for e in events
            if e.get("interval_start") and e.get("interval_end")
        }
        if not found:
            raise BadConfig(
                "no interval to monitor: no score_batch predictions event with interval bounds triggered this run; "
                "trigger it by hand with interval_start and interval_end"
            )
        if len(found) > 1:
            raise BadInput(f"the triggering events name {len(found)} different intervals; expected one per run")
        bounds = found.pop()
    return {"start": bounds[0].isoformat(), "end": bounds[1].isoformat()}


def _breach_text(policy: DriftPolicy, numbers: dict) -> str:
    share = numbers.get("drifted_share")
    prediction = numbers.get("prediction_drift")
    if share is None or prediction is None:
        return "no numbers"
    text = (
        f"drifted share {share:.2f} (threshold {policy.drifted_share:.2f}, effect size >= "
        f"{policy.effect_size_floor:g}), prediction drift {prediction:.3f} (threshold {policy.prediction_drift:g})"
    )
    # The estimated-metric rule names itself when it is what breached (estimation.estimated_breach).
    return f"{text}; {numbers['estimated_breach']}" if numbers.get("estimated_breach") else text


# -- sampling ---------------------------------------------------------------------------------------


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


def _evidently_frame(frame: pd.DataFrame, config: DatasetConfig) -> pd.DataFrame:
    """Feature columns typed the way Evidently reads them: float64 and plain text."""
    data = {}
    for feature in config.features:
        column = frame[feature.name]
        if feature.type == "numeric":
            data[feature.name] = pd.to_numeric(column, errors="coerce").astype("float64")
        else:
            data[feature.name] = column.astype("object").where(column.notna(), None)
    return pd.DataFrame(data, index=frame.index)


# -- reference ----------------------------------------------------------------------------------------


def reference_path(config: DatasetConfig, version: int) -> Path:
    return _settings(config).reference_dir / f"v{version:04d}.parquet"


def ensure_reference(
    conn: psycopg.Connection, config: DatasetConfig, model: LoadedModel, training_rows: pd.DataFrame | None = None
) -> Path:
    """The stored reference sample of this model version; built once (from training_rows, or the
    labelled history within the model's training window) and recorded in drift_references."""
    schema = config.db_schema
    row = conn.execute(
        sql.SQL("SELECT path, sha256 FROM {} WHERE model_version = %s").format(db.table(schema, "drift_references")),
        (model.version,),
    ).fetchone()
    if row is not None and Path(row[0]).is_file():
        if _file_sha256(Path(row[0])) == row[1]:
            return Path(row[0])
        log.warning("reference of model v%s at %s changed on disk; rebuilding it", model.version, row[0])
    frame = build_reference(config, model, training_rows)
    path = reference_path(config, model.version)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".parquet.partial")
    frame.to_parquet(partial, index=False)
    os.replace(partial, path)  # readers never see half a file
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (model_version, path, rows, sha256) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (model_version) DO UPDATE SET path = EXCLUDED.path, rows = EXCLUDED.rows, "
                "sha256 = EXCLUDED.sha256, created_at = now()"
            ).format(db.table(schema, "drift_references")),
            (model.version, str(path), len(frame), _file_sha256(path)),
        )
    log.info("stored the drift reference of model v%s: %s rows in %s", model.version, len(frame), path)
    return path


def build_reference(config: DatasetConfig, model: LoadedModel, training_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """A seeded sample of the model's training rows: features plus the model's own score."""
    from driftline.training import labelled_rows, read_table

    settings = _settings(config)
    if training_rows is None:
        # Typed and with unusable rows left out, as training saw them (a ' ' in a numeric column).
        history = labelled_rows(config, read_table(config.resolve_location(config.history_uri), config))
        training_rows = _within_training_window(history, config, model.manifest)
    missing = [name for name in config.feature_names if name not in training_rows.columns]
    if missing:
        raise DriftError(f"training rows for the drift reference lack column(s) {missing} of {config.path.name}")
    if len(training_rows) < MIN_REFERENCE_ROWS:
        raise DriftError(
            f"only {len(training_rows)} training rows for the drift reference of model v{model.version}; "
            f"need at least {MIN_REFERENCE_ROWS}"
        )
    table = pa.Table.from_pandas(training_rows[config.feature_names], preserve_index=False)
    sample = sample_tables([table], settings.sample_rows, settings.seed)[0].to_pandas()
    reference = _evidently_frame(sample, config)
    for name in config.categorical_features:
        sample[name] = sample[name].astype("string")
    reference[SCORE_COLUMN] = predict(model.booster, sample, config, model.manifest["categories"])
    return reference


def _within_training_window(history: pd.DataFrame, config: DatasetConfig, manifest: dict) -> pd.DataFrame:
    """History rows inside the manifest's training window (not its holdout); all rows if it has none."""
    window = manifest.get("training_window") or {}
    if not window.get("start") or not window.get("end") or config.event_time not in history.columns:
        return history
    times = pd.to_datetime(history[config.event_time], utc=True)
    inside = history[(times >= pd.Timestamp(window["start"])) & (times <= pd.Timestamp(window["end"]))]
    if len(inside) < MIN_REFERENCE_ROWS:
        log.warning(
            "only %s history rows inside the training window of model v%s; using the whole history as reference",
            len(inside),
            manifest.get("version"),
        )
        return history
    return inside


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# -- one interval -----------------------------------------------------------------------------------


def monitor_interval(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str) -> dict:
    """Compare the interval score_batch published with its model's reference; store and return the summary."""
    config = load_config(config_path)
    settings = _settings(config)
    start, end = _utc(interval_start), _utc(interval_end)
    stages: dict[str, float] = {}
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url, autocommit=True) as conn:
        db.ensure_schema(conn, config.db_schema)
        version, rows_scored, quarantined = _published_interval(conn, config, start, end)
        t = time.perf_counter()
        model = load_model(conn, config.db_schema, version)
        reference = pd.read_parquet(ensure_reference(conn, config, model))
        stages["reference"] = time.perf_counter() - t

        attribution: dict = {}
        snapshot, features, prediction, current_rows, rows_seen = compare_interval(
            config, model, reference, start, end, quarantined, stages, attribution
        )
        t = time.perf_counter()
        report = report_path(config, start, end)
        save_html(snapshot, report)
        stages["html"] = time.perf_counter() - t

        counted = [f for f in features if f.counted]
        share = len(counted) / len(features)
        summary = {
            "interval_start": start.isoformat(),
            "interval_end": end.isoformat(),
            "model_version": model.version,
            "run_id": run_id,
            "rows_scored": rows_scored,
            "rows_read": rows_seen,
            "current_rows": current_rows,
            "reference_rows": len(reference),
            "features": len(features),
            "drifted_features": sum(f.drifted for f in features),
            "counted_features": len(counted),
            "drifted_share": share,
            "counted": [f.column_name for f in counted],
            "prediction_method": prediction.method,
            "prediction_drift": prediction.statistic,
            "breach": is_breach(settings.trigger, share, prediction.statistic),
            "report_path": str(report),
            "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
            "attribution": attribution["result"].summary(),
        }
        with conn.transaction():  # readers see the interval's drift with its attribution drift, never without
            store_results(conn, config, summary, features)
            _store_attribution(conn, config, summary, attribution["result"])
        refresh_report_summary(conn, config, start, end)
    log.info("monitored interval [%s, %s): %s", start.isoformat(), end.isoformat(), json.dumps(summary))
    return summary


def compare_interval(
    config: DatasetConfig,
    model: LoadedModel,
    reference: pd.DataFrame,
    start: datetime,
    end: datetime,
    quarantined: set[str],
    stages: dict[str, float],
    attribution: dict | None = None,
) -> tuple[object, list[FeatureResult], FeatureResult, int, int]:
    """Sample the interval, score the sample, run Evidently: (snapshot, features, prediction, sampled, read).

    attribution: a dict to receive the attribution drift (explain.Attribution under "result")."""
    t = time.perf_counter()
    current, rows_seen = sample_interval(config, start, end, quarantined)
    if current is None or len(current) == 0:
        raise DriftError(f"interval [{start.isoformat()}, {end.isoformat()}) has no scored rows to compare")
    # Arrow keeps freed read buffers in its own pool; hand them back so the report's allocations
    # reuse that memory instead of stacking on top of it (peak RSS = max of the stages, not the sum).
    pa.default_memory_pool().release_unused()
    scores = predict(model.booster, current, config, model.manifest["categories"])
    current = _evidently_frame(current, config)
    current[SCORE_COLUMN] = scores
    stages["sample"] = time.perf_counter() - t

    t = time.perf_counter()
    result = _attribution_drift(config, model, reference, current)
    if attribution is not None:
        attribution["result"] = result
    stages["attribution"] = time.perf_counter() - t

    t = time.perf_counter()
    snapshot = run_report(config, reference, current)
    features, prediction = drift_results(config, snapshot, reference, current)
    stages["report"] = time.perf_counter() - t
    return snapshot, features, prediction, len(current), rows_seen


def _attribution_drift(config: DatasetConfig, model: LoadedModel, reference: pd.DataFrame, current: pd.DataFrame):
    """Mean |TreeSHAP contribution| per feature on the reference and on the interval's sample, and
    the nDCG of the interval's importance order against the reference's (explain.attribution_drift)."""
    from driftline.scoring.explain import attribution_drift, frame_contributions

    categories = model.manifest["categories"]
    return attribution_drift(
        config.feature_names,
        frame_contributions(model.booster, reference, config, categories),
        frame_contributions(model.booster, current, config, categories),
    )


def _published_interval(conn, config: DatasetConfig, start: datetime, end: datetime) -> tuple[int, int, set[str]]:
    """(model version, rows scored, quarantined entity keys) of the interval's published scoring run."""
    row = conn.execute(
        sql.SQL(
            "SELECT model_version, rows_scored FROM {} WHERE published AND status = 'succeeded' "
            "AND interval_start = %s AND interval_end = %s"
        ).format(db.table(config.db_schema, "run_summary")),
        (start, end),
    ).fetchone()
    if row is None:
        raise IntervalNotScoredError(
            f"interval [{start.isoformat()}, {end.isoformat()}) has no published predictions in "
            f"{config.db_schema}.run_summary: score_batch has not scored it (yet). Run score_batch for it first."
        )
    keys = conn.execute(
        sql.SQL(
            "SELECT DISTINCT q.entity_key FROM {} q JOIN {} i USING (interval_id) "
            "WHERE i.interval_start = %s AND i.interval_end = %s AND q.entity_key IS NOT NULL "
            "AND q.run_key = i.current_run_key"
        ).format(db.table(config.db_schema, "quarantine_rows"), db.table(config.db_schema, "scored_intervals")),
        (start, end),
    ).fetchall()
    return row[0], row[1], {key for (key,) in keys}


def sample_interval(
    config: DatasetConfig, start: datetime, end: datetime, quarantined: set[str]
) -> tuple[pd.DataFrame | None, int]:
    """Seeded sample of the interval's scored rows (parse failures and quarantined keys left out)."""
    settings = _settings(config)

    excluded = pa.array(sorted(quarantined), type=pa.string())

    def scored_chunks():
        for chunk in read_interval(config.input_location(start, end), config, start, end):
            typed = chunk.typed  # Arrow: only the sampled rows are ever converted to pandas
            keep = np.ones(typed.num_rows, dtype=bool)
            if chunk.failures:
                keep[list(chunk.failures)] = False
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

    settings = _settings(config)
    if SCORE_COLUMN in config.feature_names:
        raise DriftError(f"{config.path}: a feature is named {SCORE_COLUMN!r}, the column drift reports use for scores")
    metrics = [
        ValueDrift(column=name, method=method, threshold=threshold)
        for name, _, method, threshold in _column_methods(config)
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


def _column_methods(config: DatasetConfig) -> list[tuple[str, str, str, float | None]]:
    settings = _settings(config)
    return [
        (f.name, f.type, settings.numeric_method, settings.numeric_threshold)
        if f.type == "numeric"
        else (f.name, f.type, settings.categorical_method, settings.categorical_threshold)
        for f in config.features
    ]


def drift_results(config, snapshot, reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[FeatureResult], FeatureResult]:
    """Per-feature results and the prediction drift, read from the snapshot plus our effect sizes."""
    content = snapshot.dict()
    statistics, thresholds, verdicts = {}, {}, {}
    for metric in content["metrics"]:
        params = metric.get("config", {})
        if params.get("type") == "evidently:metric_v2:ValueDrift":
            statistics[params["column"]] = metric["value"]
            thresholds[params["column"]] = params.get("threshold")
    for test in content.get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type") == "evidently:metric_v2:ValueDrift":
            verdicts[params["column"]] = test["status"] == "FAIL"
    floor = _settings(config).trigger.effect_size_floor
    features = []
    for name, column_type, method, _ in _column_methods(config):
        drifted = verdicts.get(name)
        if drifted is None:
            raise DriftError(f"Evidently returned no drift verdict for column {name!r}")
        effect = effect_size(reference[name], current[name], column_type)
        features.append(
            FeatureResult(
                name, column_type, method, _finite(statistics.get(name)), _finite(thresholds.get(name)),
                drifted, effect, counts_as_drift(drifted, effect, floor),
            )
        )
    settings = _settings(config)
    statistic = _finite(statistics.get(SCORE_COLUMN))
    prediction = FeatureResult(
        SCORE_COLUMN, "numeric", settings.prediction_method, 0.0 if statistic is None else statistic,
        settings.trigger.prediction_drift, bool(verdicts.get(SCORE_COLUMN)), statistic, bool(verdicts.get(SCORE_COLUMN)),
    )
    return features, prediction


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def report_path(config: DatasetConfig, start: datetime, end: datetime) -> Path:
    return _settings(config).reports_dir / f"drift_{start:%Y-%m-%dT%H%M}_{end:%Y-%m-%dT%H%M}.html"


def save_html(snapshot, path: Path) -> None:
    """Write the report atomically, so a browser never opens half of a rerun's file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    snapshot.save_html(str(partial))
    os.replace(partial, path)


def refresh_report_summary(conn, config: DatasetConfig, start: datetime, end: datetime) -> None:
    """Write the driftline summary (results, thresholds, latest decision) at the top of the interval's report."""
    from driftline.drift.summary import load_summary, put_summary, summary_html

    summary = load_summary(conn, config.db_schema, start, end)
    if summary is None or not Path(summary["report_path"]).is_file():
        log.warning("no drift report file for [%s, %s) to head with the summary", start.isoformat(), end.isoformat())
        return
    put_summary(Path(summary["report_path"]), summary_html(config.name, summary, _settings(config).trigger))


def store_results(conn, config: DatasetConfig, summary: dict, features: list[FeatureResult]) -> None:
    """Replace the interval's summary and per-feature rows in one transaction."""
    schema = config.db_schema
    key = (summary["interval_start"], summary["interval_end"])
    with conn.transaction():
        for name in ("drift_features", "drift_intervals"):
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE interval_start = %s AND interval_end = %s").format(db.table(schema, name)),
                key,
            )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (interval_start, interval_end, model_version, run_id, rows_scored, current_rows, "
                "reference_rows, features, drifted_features, counted_features, drifted_share, prediction_method, "
                "prediction_drift, breach, report_path, stage_seconds) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            ).format(db.table(schema, "drift_intervals")),
            (
                *key,
                summary["model_version"],
                summary["run_id"],
                summary["rows_scored"],
                summary["current_rows"],
                summary["reference_rows"],
                summary["features"],
                summary["drifted_features"],
                summary["counted_features"],
                summary["drifted_share"],
                summary["prediction_method"],
                summary["prediction_drift"],
                summary["breach"],
                summary["report_path"],
                Jsonb(summary["stage_seconds"]),
            ),
        )
        with conn.cursor() as cursor:
            cursor.executemany(
                sql.SQL(
                    "INSERT INTO {} (interval_start, interval_end, model_version, column_name, column_type, method, "
                    "statistic, threshold, drifted, effect_size, counted) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                ).format(db.table(schema, "drift_features")),
                [
                    (*key, summary["model_version"], f.column_name, f.column_type, f.method, f.statistic,
                     f.threshold, f.drifted, f.effect_size, f.counted)
                    for f in features
                ],
            )


def _store_attribution(conn, config: DatasetConfig, summary: dict, attribution) -> None:
    """The interval's attribution drift beside its drift summary (store_results just replaced the row)."""
    conn.execute(
        sql.SQL(
            "UPDATE {} SET attribution_ndcg = %s, attribution = %s WHERE interval_start = %s AND interval_end = %s"
        ).format(db.table(config.db_schema, "drift_intervals")),
        (attribution.ndcg,
         Jsonb({"features": attribution.features, "reference": attribution.reference, "current": attribution.current}),
         summary["interval_start"], summary["interval_end"]),
    )


# -- decision ---------------------------------------------------------------------------------------


def decide_retrain(
    config_path: str,
    interval_start: datetime,
    interval_end: datetime,
    run_id: str,
    active_retrain_runs: int = 0,
    retrain_deployed: bool = True,
    now: datetime | None = None,
    *,
    queued_retrain_runs: int = 0,
    retrain_paused: bool = False,
) -> dict:
    """Apply [drift.trigger] to the monitored interval, store the decision, return it (with retrain conf).

    active_retrain_runs / queued_retrain_runs: retrain_model runs running / queued; retrain_paused: its
    DAG is paused. A run waiting on a paused or stuck retrain_model is said in the reason and alerted.
    """
    config = load_config(config_path)
    policy = _settings(config).trigger
    start, end = _utc(interval_start), _utc(interval_end)
    now = now or datetime.now(timezone.utc)
    schema = config.db_schema
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url, autocommit=True) as conn:
        current = conn.execute(
            sql.SQL(
                "SELECT model_version, drifted_share, prediction_drift, breach, counted_features, features, report_path "
                "FROM {} WHERE interval_start = %s AND interval_end = %s"
            ).format(db.table(schema, "drift_intervals")),
            (start, end),
        ).fetchone()
        if current is None:
            raise DriftError(f"interval [{start.isoformat()}, {end.isoformat()}) has not been monitored; run monitor_interval first")
        version, share, prediction, breach, counted, features, report = current
        from driftline.estimation import recent_breaches

        # A breach is drift or an estimated-metric breach ([drift.trigger] estimated_metric_*), per interval.
        history = recent_breaches(conn, schema, policy, end)
        recent = [drifted or why is not None for drifted, why, _ in history]
        estimated_why, estimate = (history[0][1], history[0][2]) if history else (None, None)
        breach = breach or estimated_why is not None
        drifted = [
            name
            for (name,) in conn.execute(
                sql.SQL(
                    "SELECT column_name FROM {} WHERE interval_start = %s AND interval_end = %s AND counted "
                    "ORDER BY column_name"
                ).format(db.table(schema, "drift_features")),
                (start, end),
            ).fetchall()
        ]
        numbers = {
            "drifted_share": share,
            "prediction_drift": prediction,
            "counted_features": counted,
            "features": features,
            "drifted_features": drifted,
            "model_version": version,
            "estimated_metric": policy.estimated_metric,
            "estimated": estimate,
            "estimated_breach": estimated_why,
        }
        decision = decide(
            policy, breach, recent, last_retrain(conn, schema), now, active_retrain_runs, retrain_deployed, numbers,
            queued_retrain_runs=queued_retrain_runs, retrain_paused=retrain_paused,
            last_trigger=_last_trigger(conn, schema),
        )
        retrain_run_id = f"drift__{end.isoformat()}" if decision.trigger else None
        decision_id = conn.execute(
            sql.SQL(
                "INSERT INTO {} (interval_start, interval_end, run_id, breach, trigger, reason, numbers, retrain_run_id, "
                "decided_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING decision_id"
            ).format(db.table(schema, "drift_decisions")),
            (start, end, run_id, decision.breach, decision.trigger, decision.reason, Jsonb(decision.numbers),
             retrain_run_id, now),
        ).fetchone()[0]
        refresh_report_summary(conn, config, start, end)  # the report now says what was decided
    log.info("drift decision %s for [%s, %s): %s", decision_id, start.isoformat(), end.isoformat(), decision.reason)
    if decision.breach:
        from driftline.alerts import raise_alert

        raise_alert(
            config,
            "drift_breach",
            "warning",
            f"drift breach (decision {decision_id}): {decision.reason}; report {Path(report).name}",
            {**decision.numbers, "trigger": decision.trigger, "decision_id": decision_id},
            dag_id="monitor_drift",
            task_id="decide_retrain",
            run_id=run_id,
            interval_start=start,
            interval_end=end,
        )
    if decision.numbers.get("retrain_waiting"):
        from driftline.alerts import raise_alert

        raise_alert(
            config,
            "retrain_waiting",
            "warning",
            f"{decision.numbers['retrain_waiting']} (decision {decision_id})",
            {k: decision.numbers[k] for k in ("queued_retrain_runs", "retrain_paused", "active_retrain_runs")},
            dag_id="monitor_drift",
            task_id="decide_retrain",
            run_id=run_id,
            interval_start=start,
            interval_end=end,
        )
    return {
        "decision_id": decision_id,
        "breach": decision.breach,
        "trigger": decision.trigger,
        "reason": decision.reason,
        "retrain_run_id": retrain_run_id,
        # What retrain_model receives as dag_run.conf (visible on the triggered run in the UI).
        "retrain_conf": {
            "config": config_path,
            "reason": f"monitor_drift: {decision.reason}",
            "interval": {"start": start.isoformat(), "end": end.isoformat()},
            "decision_id": decision_id,
            "report_path": report,
            **{k: decision.numbers[k] for k in ("drifted_share", "prediction_drift", "drifted_features", "model_version")},
        },
    }


def _last_trigger(conn, schema: str) -> tuple[datetime, str] | None:
    """When our newest retrain trigger was decided, and the retrain_model run id it asked for."""
    row = conn.execute(
        sql.SQL(
            "SELECT decided_at, retrain_run_id FROM {} WHERE trigger ORDER BY decided_at DESC, decision_id DESC LIMIT 1"
        ).format(db.table(schema, "drift_decisions")),
    ).fetchone()
    return (row[0], row[1]) if row else None


def last_retrain(conn, schema: str) -> datetime | None:
    """When a retrain last started or changed the champion: the later of our last trigger and the last
    promotion from an earlier champion (the first registration is not a retrain)."""
    row = conn.execute(
        sql.SQL(
            "SELECT greatest((SELECT max(decided_at) FROM {d} WHERE trigger), "
            "(SELECT max(created_at) FROM {p} WHERE action = 'promote' AND from_version IS NOT NULL))"
        ).format(d=db.table(schema, "drift_decisions"), p=db.table(schema, "promotion_events")),
    ).fetchone()
    return row[0]


# -- demo -------------------------------------------------------------------------------------------


def monitor_conf(config_path: str, start: datetime, end: datetime) -> dict:
    """The conf of a manual monitor_drift run for one interval."""
    return {"config": config_path, "interval_start": _utc(start).isoformat(), "interval_end": _utc(end).isoformat()}


def run_demo_monitoring(config_path: str, intervals: list[tuple[datetime, datetime]], dag_file: Path) -> list[str]:
    """Run monitor_drift through Airflow (dag.test) for each interval and print what it found.

    Returns the intervals whose run did not succeed.
    """
    from driftline.cli import load_dag_file

    config = load_config(config_path)
    dag = load_dag_file(dag_file)
    failed = []
    for start, end in intervals:
        # What the predictions Asset event would say under a scheduler: a manual run names its interval.
        run = dag.test(run_conf=monitor_conf(config_path, start, end))
        state = str(getattr(run, "state", "unknown"))
        if "success" not in state:
            failed.append(f"{start:%Y-%m-%d}: {state}")
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT interval_start, current_rows, counted_features, features, drifted_share, prediction_drift, "
                "breach, trigger, reason, report_path, retrain_run_id, attribution_ndcg FROM {} WHERE interval_start = ANY(%s) "
                "ORDER BY interval_start"
            ).format(db.table(config.db_schema, "drift_summary")),
            ([start for start, _ in intervals],),
        ).fetchall()
        features = conn.execute(
            sql.SQL(
                "SELECT interval_start, string_agg(column_name, ', ' ORDER BY column_name) FROM {} "
                "WHERE counted AND interval_start = ANY(%s) GROUP BY 1"
            ).format(db.table(config.db_schema, "drift_features")),
            ([start for start, _ in intervals],),
        ).fetchall()
    drifted = dict(features)
    print(f"\n{'interval':<12}{'sampled':>9}{'drifted':>9}{'share':>7}{'pred_drift':>12}{'attr_ndcg':>11}  breach  decision")
    for start, sampled, counted, total, share, prediction, breach, trigger, _, _, _, ndcg in rows:
        decision = "retrain" if trigger else "none"
        attribution = "-" if ndcg is None else f"{ndcg:.3f}"
        print(f"{start:%Y-%m-%d}  {sampled:>9}{f'{counted}/{total}':>9}{share:>7.2f}{prediction:>12.3f}{attribution:>11}  "
              f"{'yes' if breach else 'no':<6}  {decision}")
    print("\ndecisions:")
    for start, *_, reason, _, retrain_run, _ in rows:
        suffix = f"  -> {RETRAIN_DAG_ID} run {retrain_run}" if retrain_run else ""
        print(f"  {start:%Y-%m-%d}: {reason}{suffix}")
        if drifted.get(start):
            print(f"              drifted features: {drifted[start]}")
    if rows:
        print("attr_ndcg: nDCG of the features' mean |TreeSHAP contribution| order vs the reference (< 0.9: attribution drift)")
        print(f"\nreport:  {rows[-1][9]}  (open it in a browser)")
    from driftline.estimation import print_estimates

    print_estimates(config, intervals)
    return failed

