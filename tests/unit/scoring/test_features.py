"""Features bind to the model by name: a config's [features] order (and the order of its category
lists) never changes a score, and a config that adds, drops or retypes a feature relative to the
model, or allows a category the model cannot code, is refused with both sides named (#26)."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftline.config import Feature
from driftline.errors import BadConfig, BadModel
from driftline.registry import LoadedModel
from driftline.scoring.compiled import CACHE_ENV
from driftline.scoring.engine import Scorer, predict
from driftline.scoring.explain import Explainer
from driftline.scoring.features import FeatureMismatch, bind, model_binding
from tests.unit.models import awkward_rows

ENGINES = ("compiled", "lightgbm")
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def setup(tmp_path_factory, trained_model):
    """(compiled-engine config, its trained model, awkward rows, their scores in the config's own order
    by engine: the compiled engine's agree with LightGBM's within COMPILED_TOLERANCE, not bit for bit)."""
    saved = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("cache"))
    config, model = trained_model("binary")
    rows = awkward_rows(config)
    baseline = {engine: Scorer(model, replace(config, scoring_engine=engine)).predict(rows) for engine in ENGINES}
    yield config, model, rows, baseline
    if saved is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = saved


def _with_features(config, features):
    return replace(config, features=type(config.features)(features))


@FAST
@given(data=st.data())
def test_any_feature_order_scores_bit_identically_on_every_path(setup, data):
    config, model, rows, baseline = setup
    order = data.draw(st.permutations(list(config.features)))
    # The order of an explicit category list does not matter either: codes are the model's.
    order = [
        replace(f, categories=tuple(data.draw(st.permutations(list(f.categories))))) if f.categories else f
        for f in order
    ]
    permuted = _with_features(config, order)
    for engine in ENGINES:
        scorer = Scorer(model, replace(permuted, scoring_engine=engine))
        assert scorer.engine == engine
        np.testing.assert_array_equal(scorer.predict(rows), baseline[engine])
    np.testing.assert_array_equal(predict(model, rows.to_pandas(), permuted), baseline["lightgbm"])
    explain = replace(config.explain, top_fraction=0.01, min_score=None)
    scores = baseline["lightgbm"]
    reasons = Explainer(model, replace(config, explain=explain)).reasons(rows, scores, {"run_key": 1})
    again = Explainer(model, replace(permuted, explain=explain)).reasons(rows, scores, {"run_key": 1})
    assert again.equals(reasons)  # the same feature names on the same contributions


def _changed(config, data):
    """A config that differs from the model's features by one added, dropped or retyped feature."""
    features = list(config.features)
    change = data.draw(st.sampled_from(["add", "drop", "retype"]))
    if change == "add":
        name = data.draw(
            st.text("abcdefghij_", min_size=3, max_size=12).filter(lambda n: n not in config.feature_names)
        )
        kind = data.draw(st.sampled_from(["numeric", "categorical"]))
        features.insert(data.draw(st.integers(0, len(features))), Feature(name=name, type=kind))
        return change, name, _with_features(config, features)
    victim = data.draw(st.sampled_from(features))
    if change == "drop":
        features.remove(victim)
    else:
        other = "numeric" if victim.type == "categorical" else "categorical"
        features[features.index(victim)] = Feature(name=victim.name, type=other)
    return change, victim.name, _with_features(config, data.draw(st.permutations(features)))


@FAST
@given(data=st.data())
def test_an_added_dropped_or_retyped_feature_is_refused_naming_both_sides(setup, data):
    config, model, rows, _ = setup
    change, name, changed = _changed(config, data)
    attempts = [
        lambda: Scorer(model, changed),
        lambda: Scorer(model, replace(changed, scoring_engine="lightgbm")),
        lambda: predict(model, rows.to_pandas(), changed),
        lambda: Explainer(model, changed),
    ]
    for attempt in attempts:
        with pytest.raises(FeatureMismatch) as refused:
            attempt()
        message = str(refused.value)
        assert isinstance(refused.value, BadConfig)
        assert f"model v{model.version}" in message and config.path.name in message and name in message
        assert "Model v1 features:" in message and "Config features:" in message


def test_a_category_the_model_cannot_code_is_refused(setup):
    config, model, _, _ = setup
    features = [replace(f, categories=(*f.categories, "barter")) if f.name == "channel" else f for f in config.features]
    with pytest.raises(FeatureMismatch, match=r"'channel' allows 1 category the model has no code for \('barter'\)"):
        Scorer(model, _with_features(config, features))


def test_a_manifest_without_features_is_read_from_the_model_text(setup):
    config, model, _, _ = setup
    full = model_binding(model.manifest, model.text, model.version)
    legacy = {k: v for k, v in model.manifest.items() if k not in ("features", "categories")}
    assert model_binding(legacy, model.text, model.version) == full
    assert full.names == tuple(config.feature_names)


def test_a_manifest_that_contradicts_its_model_text_is_a_bad_model(setup):
    config, model, _, _ = setup
    swapped = list(model.manifest["features"])
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(BadModel, match="the model text was trained on"):
        bind(replace(model, manifest={**model.manifest, "features": swapped}), config)
    categories = {k: v[::-1] for k, v in model.manifest["categories"].items()}
    with pytest.raises(BadModel, match="pandas_categorical"):
        bind(replace(model, manifest={**model.manifest, "categories": categories}), config)
    assert isinstance(model, LoadedModel)
