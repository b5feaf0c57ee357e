"""[scoring] engine = "compiled": lleaves' scores equal LightGBM's within 1e-9, on the rows that
matter (NaNs, missing and unseen categories), for binary and regression models; a model lleaves
cannot compile is scored by LightGBM with a warning. A cached object is loaded only when its sha256
equals the one recorded in the registry when it was built (here: a dict standing in for it)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from driftline.config import load_config
from driftline.scoring.compiled import cache_dir
from driftline.scoring.engine import COMPILED_TOLERANCE, Scorer
from driftline.scoring.features import bind, model_matrix
from tests.unit.models import awkward_rows

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path / "cache"))


class Hashes(dict):
    """registry.CompiledHashes without Postgres: cache key -> object sha256."""

    def expected(self, cache_key):
        return self.get(cache_key)

    def record(self, cache_key, model_sha256, object_sha256):
        self[cache_key] = object_sha256


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_compiled_scores_equal_lightgbm_within_tolerance(task, trained_model):
    config, model = trained_model(task)
    assert config.scoring_engine == "compiled"
    rows = awkward_rows(config)
    expected = model.booster.predict(model_matrix(rows, bind(model, config)))

    scorer = Scorer(model, config)
    scores = scorer.predict(rows)

    assert scorer.engine == "compiled"  # no silent fallback: these really are lleaves' scores
    assert np.isfinite(scores).all() and len(scores) == rows.num_rows
    assert np.max(np.abs(scores - expected)) <= COMPILED_TOLERANCE
    # The awkward rows do reach different leaves: the check would notice a wrong routing.
    assert len(np.unique(np.round(scores, 12))) > 100


def test_compiled_model_is_cached_per_model_and_reused(trained_model):
    config, model = trained_model("binary")
    rows = awkward_rows(config)
    hashes = Hashes()
    first = Scorer(model, config, hashes).predict(rows)
    cached = sorted((cache_dir() / "compiled").iterdir())
    assert [p.name for p in cached] == list(hashes) and cached[0].name.startswith(model.sha256)  # no sidecar
    assert hashes[cached[0].name] == hashlib.sha256(cached[0].read_bytes()).hexdigest()

    again = Scorer(model, config, hashes)
    assert again.engine == "compiled"
    assert sorted((cache_dir() / "compiled").iterdir()) == cached  # loaded, not compiled a second time
    np.testing.assert_array_equal(again.predict(rows), first)


DAMAGES = ["truncated", "flipped byte", "garbage", "empty", "another model's object", "not in the registry"]


def damage_cache(object_file: Path, damage: str, other: Path | None = None) -> None:
    """Damage a cached object the way a disk, a crash or another user could, and write the sidecar
    sha256 an earlier version trusted so that it matches the damaged file."""
    data = object_file.read_bytes()
    damaged = {
        "truncated": data[: len(data) // 3],
        "flipped byte": data[:100] + bytes([data[100] ^ 0xFF]) + data[101:],
        "garbage": os.urandom(len(data)),
        "empty": b"",
        "another model's object": other.read_bytes() if other else data,
        "not in the registry": data[:100] + bytes([data[100] ^ 0xFF]) + data[101:],
    }[damage]
    object_file.write_bytes(damaged)
    object_file.with_name(object_file.name + ".sha256").write_text(hashlib.sha256(damaged).hexdigest() + "\n")


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_cache_file_that_does_not_match_the_registry_is_compiled_again_and_reported(caplog, damage, trained_model):
    """LLVM aborts the process on a bad object file: the cache is verified against the registry's
    hash (never the sidecar) before it is loaded."""
    config, model = trained_model("binary")
    rows = awkward_rows(config)
    expected = model.booster.predict(model_matrix(rows, bind(model, config)))
    hashes = Hashes()
    other = None
    if damage == "another model's object":
        regression, regression_model = trained_model("regression")
        Scorer(regression_model, regression, hashes)
        [other] = [p for p in (cache_dir() / "compiled").iterdir()]
    Scorer(model, config, hashes)
    [object_file] = [p for p in (cache_dir() / "compiled").iterdir() if p.name.startswith(model.sha256)]
    data = object_file.read_bytes()
    damage_cache(object_file, damage, other)
    if damage == "not in the registry":
        del hashes[object_file.name]

    with caplog.at_level(logging.WARNING, logger="driftline.scoring.compiled"):
        scorer = Scorer(model, config, hashes)
        scores = scorer.predict(rows)
    assert "was refused" in caplog.text and "compiled again" in caplog.text
    [notice] = scorer.notices
    assert (
        str(object_file) in notice
        and ("no sha256 is recorded" if damage == "not in the registry" else "is not the") in notice
    )
    assert scorer.engine == "compiled"
    assert np.max(np.abs(scores - expected)) <= COMPILED_TOLERANCE
    assert (
        hashlib.sha256(object_file.read_bytes()).hexdigest()
        == hashlib.sha256(data).hexdigest()
        == hashes[object_file.name]
    )

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="driftline.scoring.compiled"):
        again = Scorer(model, config, hashes)  # the next run loads the repaired cache without a word
    assert again.engine == "compiled" and caplog.text == "" and again.notices == []
    np.testing.assert_array_equal(again.predict(rows), scores)


@pytest.mark.parametrize(
    "unsafe", ["world-writable", "group-writable", "another user's", "a symlink", "parent world-writable"]
)
def test_an_unsafe_cache_folder_is_refused_with_a_clear_message(tmp_path, caplog, unsafe, trained_model):
    config, model = trained_model("binary")
    folder = cache_dir() / "compiled"
    folder.parent.mkdir(parents=True)
    if unsafe == "a symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "elsewhere")
    elif unsafe == "parent world-writable":
        folder.parent.chmod(0o777)
    else:
        folder.mkdir(mode=0o700)
        if unsafe == "another user's":
            os.chown(folder, 12345, 12345) if os.geteuid() == 0 else pytest.skip("needs root to chown")
        else:
            folder.chmod(0o777 if unsafe == "world-writable" else 0o770)
    hashes = Hashes()

    with caplog.at_level(logging.WARNING, logger="driftline.scoring"):
        scorer = Scorer(model, config, hashes)
    assert scorer.engine == "lightgbm" and hashes == {}  # nothing built into, or loaded from, that folder
    [notice] = scorer.notices
    assert "refusing the compiled-model cache" in notice and "DRIFTLINE_CACHE_DIR" in notice
    assert notice in caplog.text
    rows = awkward_rows(config)
    expected = model.booster.predict(model_matrix(rows, bind(model, config)))
    np.testing.assert_array_equal(scorer.predict(rows), expected)


def test_an_identical_object_another_registry_built_is_rebuilt_without_a_notice(caplog, trained_model):
    """Two deployment schemas share the cache: an object no row of this registry vouches for is not
    loaded, but rebuilt; when the rebuild is byte-identical nothing was wrong, so nothing is reported."""
    config, model = trained_model("binary")
    first = Hashes()
    Scorer(model, config, first)
    second = Hashes()
    with caplog.at_level(logging.WARNING, logger="driftline.scoring.compiled"):
        scorer = Scorer(model, config, second)
    assert scorer.engine == "compiled" and scorer.notices == [] and caplog.text == ""
    assert second == first


def test_without_the_registry_the_cache_is_not_used(trained_model):
    config, model = trained_model("binary")
    scorer = Scorer(model, config)
    assert scorer.engine == "compiled" and not (cache_dir() / "compiled").exists()


def test_model_lleaves_cannot_compile_is_scored_by_lightgbm_with_a_warning(caplog, trained_model):
    config, model = trained_model("regression", linear_tree="true")
    rows = awkward_rows(config)
    with caplog.at_level(logging.WARNING, logger="driftline.scoring"):
        scorer = Scorer(model, config)
    assert scorer.engine == "lightgbm"
    assert "compiled scoring unavailable (linear trees" in caplog.text
    expected = model.booster.predict(model_matrix(rows, bind(model, config)))
    np.testing.assert_array_equal(scorer.predict(rows), expected)


def test_lightgbm_engine_never_compiles(trained_model):
    assert load_config(REPO / "config" / "demo.toml").scoring_engine == "lightgbm"
    config, model = trained_model("binary")
    config = dataclasses.replace(config, scoring_engine="lightgbm")
    scorer = Scorer(model, config)
    assert scorer.engine == "lightgbm" and not (cache_dir() / "compiled").exists()
