"""[scoring] engine = "compiled": lleaves' scores equal LightGBM's within 1e-9, on the rows that
matter (NaNs, missing and unseen categories), for binary and regression models; a model lleaves
cannot compile is scored by LightGBM with a warning."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from driftline.config import load_config
from driftline.scoring.compiled import cache_dir
from driftline.scoring.engine import COMPILED_TOLERANCE, Scorer
from driftline.scoring.features import bind, model_matrix
from tests.unit.models import awkward_rows, config_for, trained

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_compiled_scores_equal_lightgbm_within_tolerance(tmp_path, task):
    config = config_for(tmp_path, task)
    assert config.scoring_engine == "compiled"
    model = trained(config)
    rows = awkward_rows(config)
    expected = model.booster.predict(model_matrix(rows, bind(model, config)))

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
    expected = model.booster.predict(model_matrix(rows, bind(model, config)))
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
    expected = model.booster.predict(model_matrix(rows, bind(model, config)))
    np.testing.assert_array_equal(scorer.predict(rows), expected)


def test_lightgbm_engine_never_compiles(tmp_path):
    config = load_config(REPO / "config" / "demo.toml")
    assert config.scoring_engine == "lightgbm"
    model = trained(config)
    scorer = Scorer(model, config)
    assert scorer.engine == "lightgbm" and not (cache_dir() / "compiled").exists()
