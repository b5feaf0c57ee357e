"""[scoring] engine = "compiled": lleaves' scores equal LightGBM's within 1e-9, on the rows that
matter (NaNs, missing and unseen categories), for binary and regression models; a model lleaves
cannot compile is scored by LightGBM with a warning."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pytest

from driftline.scoring.compiled import cache_dir
from driftline.config import load_config
from driftline.devtools.demo_data import transactions
from driftline.registry import LoadedModel, sha256_bytes
from driftline.scoring.engine import COMPILED_TOLERANCE, Scorer
from driftline.scoring.features import model_matrix
from driftline.training import train

REPO = Path(__file__).resolve().parents[2]
DAY = datetime(2026, 10, 1, tzinfo=timezone.utc)


def config_for(tmp_path: Path, task: str, **params: str):
    text = (REPO / "config" / "demo.toml").read_text()
    text = text.replace("num_boost_round = 200", "num_boost_round = 60")  # compiles in a few seconds
    text = text.replace('engine = "lightgbm"', 'engine = "compiled"')  # the demo's is lightgbm
    if task == "regression":
        text = text.replace('task = "binary"', 'task = "regression"').replace('objective = "binary"', 'objective = "regression"')
        text = text.replace('metric = "auc"', 'metric = "rmse"').replace("min_metric = 0.6", "min_metric = 1000000")
    for key, value in params.items():
        text = text.replace("[model.params]\n", f"[model.params]\n{key} = {value}\n")
    (tmp_path / "config").mkdir(exist_ok=True)
    path = tmp_path / "config" / f"{task}.toml"
    path.write_text(text)
    return load_config(path)


def trained(config) -> LoadedModel:
    history = transactions(np.random.default_rng(7), DAY, 20_000, "h")
    if config.task == "regression":
        history[config.target] = history["amount"] * 0.01 + history["transactions_last_24h"]
    model = train(config, history)
    text = model.model_text.encode("utf-8")
    return LoadedModel(
        version=1, booster=lgb.Booster(model_str=model.model_text), manifest=model.manifest, sha256=sha256_bytes(text), text=text
    )


def awkward_rows(config) -> pa.Table:
    """Typed rows as the scoring path sees them, with every kind of value a tree can route oddly."""
    frame = transactions(np.random.default_rng(11), DAY, 5_000, "s").drop(columns=[config.target])
    frame = frame.astype({"merchant_category": object, "channel": object})
    frame.loc[::7, "amount"] = np.nan
    frame.loc[::5, "distance_from_home_km"] = np.nan
    frame.loc[::11, "merchant_category"] = None  # missing category
    frame.loc[3::13, "merchant_category"] = "crypto_exchange"  # never seen in training
    frame.loc[::17, "channel"] = "carrier_pigeon"
    frame.loc[::19, "account_age_days"] = 0.0  # zero is "missing" for zero_as_missing models
    frame.loc[::23, "hour_of_day"] = -1e300
    frame.loc[::29, "transactions_last_24h"] = np.inf
    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_compiled_scores_equal_lightgbm_within_tolerance(tmp_path, task):
    config = config_for(tmp_path, task)
    assert config.scoring_engine == "compiled"
    model = trained(config)
    rows = awkward_rows(config)
    expected = model.booster.predict(model_matrix(rows, config, model.manifest["categories"]))

    scorer = Scorer(model, config)
    scores = scorer.predict(rows)

    assert scorer.engine == "compiled"  # no silent fallback: these really are lleaves' scores
    assert np.isfinite(scores).all() and len(scores) == rows.num_rows
    assert np.max(np.abs(scores - expected)) <= COMPILED_TOLERANCE
    # The awkward rows do reach different leaves: the check would notice a wrong routing.
    assert len(np.unique(np.round(scores, 12))) > 100


def test_compiled_model_is_cached_per_model_and_reused(tmp_path):
    config = config_for(tmp_path, "binary")
    model = trained(config)
    rows = awkward_rows(config)
    first = Scorer(model, config).predict(rows)
    cached = sorted((cache_dir() / "compiled").iterdir())
    assert [p.name.startswith(model.sha256) for p in cached] == [True, True]  # the object and its sha256

    again = Scorer(model, config)
    assert again.engine == "compiled"
    assert sorted((cache_dir() / "compiled").iterdir()) == cached  # loaded, not compiled a second time
    np.testing.assert_array_equal(again.predict(rows), first)


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "no checksum"])
def test_a_damaged_cache_file_is_compiled_again_with_a_warning(tmp_path, caplog, damage):
    """LLVM aborts the process on a bad object file: the cache is verified before it is loaded."""
    config = config_for(tmp_path, "binary")
    model = trained(config)
    rows = awkward_rows(config)
    expected = model.booster.predict(model_matrix(rows, config, model.manifest["categories"]))
    Scorer(model, config)
    [object_file] = [p for p in (cache_dir() / "compiled").iterdir() if p.suffix == ".o"]
    data = object_file.read_bytes()
    if damage == "truncated":
        object_file.write_bytes(data[: len(data) // 3])
    elif damage == "flipped byte":
        object_file.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    else:
        object_file.with_name(object_file.name + ".sha256").unlink()

    with caplog.at_level(logging.WARNING, logger="driftline.scoring.compiled"):
        scorer = Scorer(model, config)
        scores = scorer.predict(rows)
    assert "is unusable" in caplog.text and "compiling again" in caplog.text
    assert scorer.engine == "compiled"
    assert np.max(np.abs(scores - expected)) <= COMPILED_TOLERANCE
    assert object_file.read_bytes() == data  # the cache holds a good object again

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="driftline.scoring.compiled"):
        again = Scorer(model, config)  # the next run loads the repaired cache without a word
    assert again.engine == "compiled" and caplog.text == ""
    np.testing.assert_array_equal(again.predict(rows), scores)


def test_model_lleaves_cannot_compile_is_scored_by_lightgbm_with_a_warning(tmp_path, caplog):
    config = config_for(tmp_path, "regression", linear_tree="true")
    model = trained(config)
    rows = awkward_rows(config)
    with caplog.at_level(logging.WARNING, logger="driftline.scoring"):
        scorer = Scorer(model, config)
    assert scorer.engine == "lightgbm"
    assert "compiled scoring unavailable (linear trees" in caplog.text
    expected = model.booster.predict(model_matrix(rows, config, model.manifest["categories"]))
    np.testing.assert_array_equal(scorer.predict(rows), expected)


def test_lightgbm_engine_never_compiles(tmp_path):
    config = load_config(REPO / "config" / "demo.toml")
    assert config.scoring_engine == "lightgbm"
    model = trained(config)
    scorer = Scorer(model, config)
    assert scorer.engine == "lightgbm" and not (cache_dir() / "compiled").exists()
