"""Linear TreeSHAP equals LightGBM's pred_contrib (to 1e-12) on random models and awkward inputs,
is built into a private verified cache, falls back to pred_contrib without a compiler, and refuses
linear trees."""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftline.errors import BadModel
from driftline.registry import LoadedModel
from driftline.scoring import native_build
from driftline.scoring.explain import Contributions, Explainer, frame_contributions
from driftline.scoring.features import bind, model_frame, model_matrix
from driftline.scoring.treeshap import LinearTreeShap, LinearTreesRefused, UnsupportedModel, parse
from tests.unit.models import awkward_rows


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.setattr(native_build, "_loaded", {})
        lib = native_build.load("treeshap.c")
    assert lib is not None, "gcc is part of this environment"
    return lib


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(native_build, "_loaded", {})
    return tmp_path / "cache" / "native"


AWKWARD = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 1e300, -1e300, -1.0, -0.5, 0.5, 2**31, 1e10]


@st.composite
def models_and_inputs(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    rows, features = draw(st.integers(60, 400)), draw(st.integers(1, 6))
    categorical = sorted(draw(st.sets(st.integers(0, features - 1), max_size=features)))
    X = rng.normal(scale=draw(st.sampled_from([0.01, 1.0, 100.0])), size=(rows, features))
    for column in categorical:
        X[:, column] = rng.integers(0, draw(st.integers(2, 40)), rows)
    X[rng.random(X.shape) < draw(st.sampled_from([0.0, 0.1, 0.4]))] = np.nan
    X[rng.random(X.shape) < draw(st.sampled_from([0.0, 0.2]))] = 0.0
    signal = np.nan_to_num(X).sum(axis=1) + rng.normal(size=rows)
    objective = draw(st.sampled_from(["binary", "regression"]))
    target = (signal > np.median(signal)).astype(float) if objective == "binary" else signal
    params = {
        "objective": objective,
        "verbose": -1,
        "seed": seed,
        "num_leaves": draw(st.integers(2, 40)),
        "max_depth": draw(st.sampled_from([-1, 1, 2, 3, 5, 8])),
        "min_data_in_leaf": draw(st.integers(1, 30)),
        "min_data_per_group": draw(st.integers(1, 20)),
        "cat_smooth": draw(st.sampled_from([0.0, 1.0, 10.0])),
        "max_cat_to_onehot": draw(st.sampled_from([1, 4, 64])),
        "zero_as_missing": draw(st.booleans()),
        "use_missing": draw(st.booleans()),
        "feature_pre_filter": False,
    }
    rounds = draw(st.integers(1, 25))
    inputs = rng.normal(scale=50.0, size=(60, features))
    for column in categorical:
        inputs[:, column] = rng.integers(-3, 45, len(inputs))
    odd = rng.random(inputs.shape) < 0.3
    inputs[odd] = rng.choice(AWKWARD, size=int(odd.sum()))
    return X, target, categorical, params, rounds, np.vstack([inputs, X[:40]])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=models_and_inputs())
def test_linear_treeshap_equals_pred_contrib_on_random_models_and_inputs(library, case):
    X, target, categorical, params, rounds, inputs = case
    booster = lgb.train(params, lgb.Dataset(X, target, categorical_feature=categorical), num_boost_round=rounds)
    expected = booster.predict(inputs, pred_contrib=True)

    got = LinearTreeShap(booster.model_to_string(), library).contributions(inputs, num_threads=2)

    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_single_leaf_trees_give_the_expected_value_only(library):
    X = np.random.default_rng(0).normal(size=(100, 3))
    booster = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(X, np.full(100, 2.5)), 3)
    assert all(tree["num_leaves"] == 1 for tree in parse(booster.model_to_string())[2])
    got = LinearTreeShap(booster.model_to_string(), library).contributions(X[:5])
    np.testing.assert_allclose(got, booster.predict(X[:5], pred_contrib=True), rtol=0, atol=1e-12)


def test_linear_trees_are_refused_clearly():
    X = np.random.default_rng(0).normal(size=(200, 3))
    params = {"objective": "regression", "linear_tree": True, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(X, X[:, 0] * 3 + X[:, 1]), 3)
    with pytest.raises(LinearTreesRefused, match="linear_tree") as error:
        parse(booster.model_to_string())
    assert isinstance(error.value, BadModel)


def test_multiclass_is_left_to_pred_contrib():
    X = np.random.default_rng(0).normal(size=(300, 3))
    params = {"objective": "multiclass", "num_class": 3, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(X, np.arange(300) % 3), 2)
    with pytest.raises(UnsupportedModel):
        parse(booster.model_to_string())


def test_the_library_is_cached_privately_and_rebuilt_when_its_hash_does_not_match(private_cache, caplog):
    assert native_build.load("treeshap.c") is not None
    (library,) = private_cache.glob("*.so")
    assert private_cache.stat().st_mode & 0o777 == 0o700
    assert library.with_name(library.name + ".sha256").is_file()

    library.write_bytes(library.read_bytes()[:100])  # truncated: never handed to the loader
    native_build._loaded.clear()
    with caplog.at_level(logging.WARNING):
        assert native_build.load("treeshap.c") is not None
    assert "does not match its recorded sha256" in caplog.text
    assert len(library.read_bytes()) > 100


def test_without_a_compiler_reasons_fall_back_to_pred_contrib(private_cache, tmp_path, monkeypatch, caplog):
    X = np.random.default_rng(0).normal(size=(300, 4))
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, X[:, 0] > 0), 5)
    model = LoadedModel(1, booster, {}, text=booster.model_to_string().encode())
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CC", raising=False)
    with caplog.at_level(logging.WARNING):
        explain = Contributions(model)
        Contributions(model)
    assert explain.linear is None
    assert caplog.text.count("no C compiler found") == 1
    np.testing.assert_array_equal(explain(X, 1), booster.predict(X, pred_contrib=True))


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_reasons_and_attribution_drift_are_pred_contribs_values(library, task, trained_model):
    config, model = trained_model(task, max_cat_to_onehot=1)
    rows = awkward_rows(config)
    binding = bind(model, config)
    explain = Contributions(model)
    assert explain.linear is not None

    frame = rows.to_pandas()
    expected = model.booster.predict(model_frame(frame.iloc[:700], binding), pred_contrib=True)
    np.testing.assert_allclose(frame_contributions(model, frame, config, binding, 700), expected, atol=1e-12)
    matrix = model_matrix(rows, binding)
    np.testing.assert_allclose(explain(matrix, 2), model.booster.predict(matrix, pred_contrib=True), atol=1e-12)


def test_explainer_rows_are_the_same_with_either_treeshap(library, trained_model):
    import dataclasses

    from driftline.config import ExplainSettings

    config, model = trained_model("binary")
    config = dataclasses.replace(config, explain=ExplainSettings(top_k=4, top_fraction=0.2))
    rows = awkward_rows(config)
    scores = model.booster.predict(model_matrix(rows, bind(model, config)))
    linear, fallback = Explainer(model, config), Explainer(model, config)
    fallback._contributions.linear = None

    got = linear.reasons(rows, scores, {"run_key": 1}).to_pandas()
    want = fallback.reasons(rows, scores, {"run_key": 1}).to_pandas()

    pd.testing.assert_frame_equal(got.drop(columns="contribution"), want.drop(columns="contribution"))
    np.testing.assert_allclose(got["contribution"], want["contribution"], rtol=0, atol=1e-12)
