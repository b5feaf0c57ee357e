"""`driftline import-model`: a model trained elsewhere becomes a registered version, but only after
its features match the config and driftline's own scoring path reproduces the notebook's
predictions (the parity gate). The first model becomes champion; later ones are candidates judged
like a retrained one (fair shared holdout, guardrails, approval), by retraining/lifecycle.py.

Every refusal (untrusted file, feature contract, parity, missing MLflow model) happens before
anything is written, so a refused import registers nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pandas as pd
from psycopg import sql
from psycopg.types.json import Jsonb

from driftline import db, registry
from driftline.config import DatasetConfig, load_config
from driftline.errors import BadInput
from driftline.handoff.contract import check_contract
from driftline.handoff.describe import add_evaluation, imported_manifest
from driftline.handoff.files import ModelFile, read_model_file
from driftline.handoff.parity import ParityError, compare, read_predictions, score_sample
from driftline.scoring.sklearn_model import SklearnModel

log = logging.getLogger(__name__)
PARITY_REASON = "parity: driftline's scores of the notebook's sample against its predictions (import-model)"


def open_source(source: str, config: DatasetConfig) -> tuple[ModelFile, dict]:
    """A model file path, or an MLflow URI (models:/name/version, models:/name@alias, runs:/id/path)."""
    if source.startswith(("models:/", "runs:/")):
        from driftline.handoff.mlflow_source import read_mlflow_model

        return read_mlflow_model(source, config)
    settings = config.handoff
    return read_model_file(source, settings.trusted_types, settings.pickle_sha256), {"source": source}


def scoring_model(model_file: ModelFile, manifest: dict, version: int = 0) -> registry.LoadedModel:
    """The model as score_batch would hold it once registered (version 0: not registered yet)."""
    if model_file.kind == "lightgbm":
        booster, text = model_file.model, model_file.data
    else:
        booster, text = SklearnModel(model_file.model, manifest["task"], manifest.get("positive_label")), None
    return registry.LoadedModel(
        version=version, booster=booster, manifest=manifest, sha256=model_file.sha256, text=text
    )


def _trained_until(value: str | datetime) -> pd.Timestamp:
    try:
        moment = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"--trained-until must be an ISO date or time, got {value!r}") from exc
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def unseen_rows(config: DatasetConfig, until: pd.Timestamp) -> pd.DataFrame:
    """Labelled history rows after the model's training end: its own holdout, as driftline sees it.

    None after that time is an empty frame (the import goes on without metrics, no_holdout_reason
    says so); a history that cannot be read or has too few usable rows is its TrainingError."""
    from driftline.labelled import labelled_rows, read_table

    history = config.resolve_location(config.history_uri)
    rows = labelled_rows(config, read_table(history, config))
    times = pd.to_datetime(rows[config.event_time], utc=True)
    return rows[times > until]


def no_holdout_reason(until: pd.Timestamp) -> str:
    """Why an imported version has no holdout: recorded in its manifest and printed by import-model."""
    return (
        f"no labelled history row is newer than --trained-until ({until.isoformat()}): the version has no holdout "
        "metrics and no calibration, so estimated performance is skipped for it; a retrained version "
        "(retrain_model) gets both"
    )


def import_model(
    config_path: str,
    source: str,
    predictions: str,
    trained_until: str | datetime,
    sample: str | None = None,
    reason: str | None = None,
    run_id: str | None = None,
    *,
    actor: str = "import-model",
) -> dict:
    """Check, prove and register an externally trained model; returns what happened (version, parity, decision).
    actor: who imports it, recorded with a promotion decision (`driftline import-model`: cli:<user>)."""
    from driftline.scoring.engine import predict

    config = load_config(config_path)
    until = _trained_until(trained_until)
    model_file, origin = open_source(source, config)
    categories = check_contract(model_file.model, model_file.kind, config)
    if config.explain is not None and model_file.kind != "lightgbm":  # refused now rather than at the first scoring
        from driftline.scoring.sklearn_model import explainable_parts

        explainable_parts(model_file.model, config)
    manifest = imported_manifest(config, model_file, categories, until, origin)
    model = scoring_model(model_file, manifest)
    location = sample or config.resolve_location(config.history_uri)
    if not isinstance(location, str):  # the sample is read like an interval file, by score_batch's reader
        raise BadInput(
            f"{config.path}: [source] history is a SQL table, and the parity sample is read from a file; pass "
            "--sample with the file of input rows the notebook's predictions are for"
        )
    keys, scores, times = score_sample(config, model, location)
    expected = read_predictions(predictions, config)
    parity = compare(
        keys,
        scores,
        expected,
        config.handoff.parity_tolerance,
        times=times,
        min_rows=config.handoff.parity_min_rows,
        where=f"{location} (parity sample)",
    )
    if not parity.passed:
        raise ParityError(
            f"{predictions}: driftline does not reproduce the notebook's predictions: {parity.failure()}. Nothing was "
            "registered. Check that the sample and predictions come from the same model and rows, and that [features] "
            "types match what the notebook fed the model ([handoff] parity_tolerance sets the tolerance)"
        )
    unseen = unseen_rows(config, until)
    unseen_scores = predict(model, unseen, config) if len(unseen) else scores[:0]
    manifest = add_evaluation(config, manifest, unseen, unseen_scores, scores)
    note = None if len(unseen) else no_holdout_reason(until)
    if note:
        manifest["evaluation_note"] = note
        log.warning("%s: %s", config.name, note)
    manifest["parity"] = parity.summary()
    manifest["row_selection"] = {
        "source": f"imported ({origin['source']}); trained elsewhere until {until.isoformat()}"
    }
    run_id = run_id or f"import__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    reason = reason or f"imported from {origin['source']} (parity proven on {parity.rows_compared} rows)"
    result = register_imported(config_path, config, model_file, manifest, parity.summary(), reason, run_id, actor)
    return {**result, "evaluation_note": note} if note else result


def register_imported(
    config_path: str,
    config: DatasetConfig,
    model_file: ModelFile,
    manifest: dict,
    parity: dict,
    reason: str,
    run_id: str,
    actor: str,
) -> dict:
    """Champion when the registry has none, else a candidate through validation and the promotion decision."""
    from driftline.drift.reference import ensure_reference
    from driftline.retraining.pending import candidate_window
    from driftline.retraining.windows import connect

    schema = config.db_schema
    with connect(config) as conn:
        champion = registry.champion_version(conn, schema)
        if champion is None:
            version, created = registry.register_champion(
                conn, schema, config.registry_dir, model_file.data, manifest, reason, run_id
            )
        else:
            version, created = registry.register_candidate(conn, schema, config.registry_dir, model_file.data, manifest)
        evaluation_id = record_parity(conn, schema, version, champion, parity, run_id)
        if champion is None:
            ensure_reference(
                conn, config, registry.load_model(conn, schema, version, pinned_pickles=config.handoff.pickle_sha256)
            )
            summary = {"version": version, "new_version": created, "decision": "champion", "parity": parity}
            summary["parity_evaluation_id"] = evaluation_id
            log.info("imported v%s as champion: %s", version, json.dumps(summary))
            return summary
        candidate = candidate_window(conn, config, version, manifest)
    from driftline.handoff.promotion import judge_candidate

    decision = judge_candidate(config_path, candidate, reason, run_id, actor)
    return {
        "version": version,
        "new_version": created,
        "parity": parity,
        "parity_evaluation_id": evaluation_id,
        **decision,
    }


def record_parity(conn, schema: str, version: int, champion: int | None, parity: dict, run_id: str) -> int:
    """Append the parity result to the evaluation ledger (model_evaluations), beside the holdout ones."""
    return conn.execute(
        sql.SQL(
            "INSERT INTO {} (candidate_version, champion_version, holdout_start, holdout_end, holdout_rows, "
            "holdout_reason, passed, failures, result, run_id) VALUES (%s, %s, NULL, NULL, %s, %s, %s, %s, %s, %s) "
            "RETURNING evaluation_id"
        ).format(db.table(schema, "model_evaluations")),
        (
            version,
            champion,
            parity["rows_compared"],
            PARITY_REASON,
            parity["passed"],
            Jsonb([]),
            Jsonb({"kind": "parity", **parity}),
            run_id,
        ),
    ).fetchone()[0]
