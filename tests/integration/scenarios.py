"""Steps integration test modules share: input rows, per-test schemas with a trained champion,
registry and retraining moves on them (a schema each, over the module's project data)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from driftline import db, registry
from driftline.batch import score_interval
from driftline.config import load_config
from driftline.devtools.demo_data import transactions
from driftline.labelled import read_table
from driftline.registry import register_champion
from driftline.retraining.lifecycle import decide_promotion, train_candidate, validate_candidate
from driftline.training import train
from tests.helpers import SMALL_PLAN, config_variant, db_url, fetch

ROWS = 200  # clean_rows' default
# Backfills score with the version that was champion when the interval ended; an interval ending
# after the test's promotions is scored by the current champion.
LATER = (datetime(2027, 1, 4, tzinfo=timezone.utc), datetime(2027, 1, 5, tzinfo=timezone.utc))


def variant(project: Path, **overrides: str) -> Path:
    """A fresh schema + registry for one test, trained champion v1 (same data as the project)."""
    from driftline.training import train_champion

    schema = f"sg_{uuid.uuid4().hex[:8]}"
    path = config_variant(project, schema, **overrides)
    train_champion(str(path))
    return path


def clean_rows(start: datetime, rows: int = ROWS, prefix: str | None = None) -> pd.DataFrame:
    """Demo input rows of the day from start (seeded by it), as the input CSV holds them (no target)."""
    frame = transactions(np.random.default_rng(int(start.timestamp())), start, rows, prefix or f"{start:%m%d}")
    frame = frame.drop(columns=["is_fraud"]).astype({"event_time": str})
    frame["event_time"] = frame["event_time"].str.replace(" ", "T")
    return frame


def frame_csv(frame: pd.DataFrame) -> str:
    """frame as input CSV text."""
    return frame.to_csv(index=False)


def add_second_champion(config_path: Path) -> int:
    """Train a different model (fewer rounds) and promote it: v2 champion, v1 previous."""
    config = load_config(config_path)
    trained = train(config, read_table(config.resolve_location(config.history_uri), config).iloc[:-500])
    with psycopg.connect(db_url(), autocommit=True) as conn:
        version, created = register_champion(
            conn, config.db_schema, config.registry_dir, trained.model_text, trained.manifest, "test: second champion"
        )
    assert created and version == 2
    return version


def artifact(config_path: Path, version: int) -> Path:
    """The model file of a registered version."""
    ((uri,),) = fetch(config_path, "SELECT artifact_uri FROM {s}.model_versions WHERE version = %s", (version,))
    return Path(uri.removeprefix("file://"))


def alerts(config_path: Path, kind: str) -> list[tuple]:
    """(message, numbers, severity) of the schema's alerts of one kind, oldest first."""
    return fetch(
        config_path, "SELECT message, numbers, severity FROM {s}.alerts WHERE kind = %s ORDER BY alert_id", (kind,)
    )


# -- retraining ------------------------------------------------------------------------------------

FIRST, SECOND = SMALL_PLAN.interval_bounds()
WINDOW_END = SECOND[1]
ALL_LABELS = WINDOW_END + timedelta(days=4)  # demo labels arrive 3 days after the event
FAST = {"num_boost_round": "60"}  # smaller models: the tests are about decisions, not accuracy


def new_schema(project: Path, **overrides: str) -> Path:
    return config_variant(project, f"rt_{uuid.uuid4().hex[:8]}", **{**FAST, **overrides})


def register_weak_champion(config_path: Path) -> int:
    """A champion fitted on 300 rows of the first history day: any real candidate beats it."""
    config = load_config(config_path)
    history = read_table(config.resolve_location(config.history_uri), config).head(300)
    trained = train(config, history)
    with db.connect(db_url(), autocommit=True) as conn:
        db.ensure_schema(conn, config.db_schema)
        version, _ = registry.register_champion(
            conn, config.db_schema, config.registry_dir, trained.model_text, trained.manifest, "weak test champion"
        )
    return version


def score_both_intervals(config_path: Path) -> None:
    for start, end in (FIRST, SECOND):
        score_interval(str(config_path), start, end, run_id="test_retrain")


def retrain(config_path: Path, reason: str = "test") -> tuple[dict, dict, dict]:
    candidate = train_candidate(str(config_path), reason, None, WINDOW_END, ALL_LABELS)
    validation = validate_candidate(str(config_path), candidate)
    return (
        candidate,
        validation,
        decide_promotion(str(config_path), validation, reason, "test_run", actor="retrain_model"),
    )


def champion(config_path: Path) -> int | None:
    with db.connect(db_url()) as conn:
        return registry.champion_version(conn, load_config(config_path).db_schema)


def promoted_over_weak_champion(project: Path) -> tuple[Path, int, int]:
    """A new schema where a retrained candidate replaced a weak champion: (config, weak, promoted)."""
    path = new_schema(project)
    weak = register_weak_champion(path)
    _, _, decision = retrain(path)
    assert decision["decision"] == "promoted"
    return path, weak, champion(path)
