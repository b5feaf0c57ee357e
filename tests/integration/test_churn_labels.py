"""A churn-like export trains, scores and retrains from its config alone: blank ' ' cells in
numeric columns, a Yes/No target ([dataset] positive_label) and a labels file whose label column
is named differently from the target ([source] label_column)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.config import load_config

DAY = datetime(2026, 3, 1, tzinfo=timezone.utc)
HISTORY_DAYS = 10

CONFIG = """
[dataset]
name = "churn"
task = "binary"
entity_key = "customerID"
event_time = "snapshot_at"
target = "Churn"
positive_label = "Yes"

[features.tenure]
type = "numeric"
nullable = false
[features.MonthlyCharges]
type = "numeric"
nullable = false
[features.TotalCharges]
type = "numeric"        # blank (' ') for customers in their first month
[features.Contract]
type = "categorical"
nullable = false

[source]
input = "data/churn/input/{{interval_start:%Y-%m-%d}}.csv"
labels = "data/churn/labels.csv"
label_column = "churned"
history = "data/churn/history.csv"

[schedule]
cron = "0 0 * * *"
start_date = 2026-01-01

[database]
schema = "{schema}"

[validation]
suite = "expectations/churn.json"
quarantine_budget = 0.5

[model]
registry_dir = "models/churn"
num_boost_round = 30
[model.params]
objective = "binary"

[scoring]
engine = "lightgbm"

[retraining]
min_training_rows = 500

[drift]
reports_dir = "reports/churn"
[drift.trigger]
drifted_share = 0.5
prediction_drift = 0.1
effect_size_floor = 0.1
breaches = 1
window = 1
cooldown_hours = 24
"""


def customers(rng: np.random.Generator, start: datetime, days: int, rows: int, prefix: str) -> pd.DataFrame:
    """Telco-style rows as a CSV export holds them: text cells, ' ' where TotalCharges is unknown."""
    tenure = rng.integers(0, 72, rows)
    monthly = rng.uniform(20, 120, rows).round(2)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], rows, p=[0.55, 0.25, 0.2])
    risk = 1.5 - tenure / 24 + (monthly - 70) / 40 + np.where(contract == "Month-to-month", 1.0, -1.0)
    churn = np.where(rng.random(rows) < 1 / (1 + np.exp(-risk)), "Yes", "No")
    total = np.where(tenure == 0, " ", (tenure * monthly).round(2).astype(str))
    offsets = np.sort(rng.integers(0, days * 86_400, rows))
    return pd.DataFrame(
        {
            "customerID": [f"{prefix}-{i:05d}" for i in range(rows)],
            "snapshot_at": [(start + timedelta(seconds=int(s))).strftime("%Y-%m-%dT%H:%M:%SZ") for s in offsets],
            "tenure": tenure.astype(str),
            "MonthlyCharges": monthly.astype(str),
            "TotalCharges": total,
            "Contract": contract,
            "Churn": churn,
        }
    )


@pytest.fixture(scope="module")
def churn_project(tmp_path_factory, database_url, monkeypatch_module) -> Path:
    from driftline.validation import write_suite

    monkeypatch_module.setenv("DRIFTLINE_DB_URL", database_url)
    monkeypatch_module.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    root = tmp_path_factory.mktemp("churn")
    (root / "config").mkdir()
    path = root / "config" / "churn.toml"
    path.write_text(CONFIG.format(schema=f"it_churn_{uuid.uuid4().hex[:8]}"))
    config = load_config(path)
    rng = np.random.default_rng(3)
    history = customers(rng, DAY - timedelta(days=HISTORY_DAYS), HISTORY_DAYS, 3_000, "h")
    history.loc[history.index[::150], "tenure"] = " "  # a blank in a non-nullable column: left out, counted
    data = root / "data" / "churn"
    (data / "input").mkdir(parents=True)
    history.to_csv(data / "history.csv", index=False)
    day = customers(rng, DAY, 1, 800, "d")
    day.drop(columns=["Churn"]).to_csv(config.input_location(DAY, DAY + timedelta(days=1)), index=False)
    labels = pd.DataFrame(
        {"customerID": day["customerID"], "churned": day["Churn"], "observed_at": (DAY + timedelta(days=3)).isoformat()}
    )
    labels.to_csv(data / "labels.csv", index=False)
    write_suite(config)
    return path


def test_churn_export_trains_scores_and_retrains_from_config_alone(churn_project, capsys):
    from driftline.batch import score_interval
    from driftline.cli import main
    from driftline.retraining.lifecycle import train_candidate
    from driftline.retraining.realized import update_realized_performance
    from driftline.training import train_champion

    trained = train_champion(str(churn_project))
    assert trained["version"] == 1
    assert trained["rows_excluded"] == {"total": 20, "reasons": {"missing:tenure": 20}}
    assert trained["rows"]["train"] + trained["rows"]["holdout"] == 3_000 - 20
    assert trained["metrics"]["auc"] > 0.7  # Yes/No mapped the right way round: the model learned churn

    # The suite was written before training: Contract's categories are only known now.
    assert main(["suite", "--from-model", "--config", str(churn_project)]) == 0
    diff = capsys.readouterr().out
    assert (
        '+        "column": "Contract",' in diff
        and '+          "Month-to-month",' in diff
        and "review the diff" in diff
    )
    suite = json.loads(load_config(churn_project).suite_path.read_text())
    [in_set] = [e for e in suite["expectations"] if e["type"] == "expect_column_values_to_be_in_set"]
    assert in_set["kwargs"] == {"column": "Contract", "value_set": ["Month-to-month", "One year", "Two year"]}
    assert in_set["meta"]["model_version"] == 1
    assert main(["suite", "--from-model", "--config", str(churn_project)]) == 0
    assert "nothing changed" in capsys.readouterr().out

    summary = score_interval(str(churn_project), DAY, DAY + timedelta(days=1), run_id="test_churn")
    assert summary["rows_in"] == 800 == summary["rows_scored"] + summary["rows_quarantined"]
    assert summary["rows_scored"] > 700

    as_of = DAY + timedelta(days=4)
    [realized] = update_realized_performance(str(churn_project), as_of)
    assert realized["rows_labelled"] == summary["rows_scored"]  # labels joined from the 'churned' column
    assert realized["metrics"]["auc"] > 0.7

    candidate = train_candidate(
        str(churn_project), "test: churn labels", DAY - timedelta(days=HISTORY_DAYS), DAY + timedelta(days=1), as_of
    )
    rows = candidate["rows"]["train"] + candidate["rows"]["holdout"]
    assert candidate["version"] == 2 and rows == 3_000 - 20 + summary["rows_scored"]  # history + newly labelled rows
