"""explain: which rows are explained, their top-k reasons, TreeSHAP through the native booster
(sums to the raw score, equals lightgbm's pred_contrib), gain importance from the model text, nDCG."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from driftline.config import ConfigError, ExplainSettings, load_config
from driftline.registry import LoadedModel
from driftline.scoring.explain import Explainer, gain_importance, ndcg, select_rows, top_reasons
from driftline.scoring.features import bind, model_matrix
from driftline.scoring.native_booster import NativeBooster
from tests.helpers import config_copy
from tests.unit.models import awkward_rows


def test_select_rows_by_min_score_or_top_fraction():
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.3])
    assert select_rows(scores, ExplainSettings(min_score=0.5)).tolist() == [1, 2, 3]
    assert select_rows(scores, ExplainSettings(top_fraction=0.4)).tolist() == [1, 3]
    assert select_rows(scores, ExplainSettings(top_fraction=0.2)).tolist() == [1]  # tie: the earlier row
    assert select_rows(scores, ExplainSettings(top_fraction=0.5)).tolist() == [1, 2, 3]  # ceil(2.5)
    assert select_rows(scores, ExplainSettings(top_fraction=1.0)).tolist() == [0, 1, 2, 3, 4]
    assert select_rows(np.empty(0), ExplainSettings(top_fraction=0.1)).tolist() == []


def test_top_reasons_order_by_absolute_contribution_keep_the_sign():
    contributions = np.array([[0.5, -2.0, 0.1, 9.0], [0.0, 0.3, -0.3, 9.0]])  # last column: expected value
    order, signed = top_reasons(contributions, 2)
    assert order.tolist() == [[1, 0], [1, 2]]  # tie at 0.3: feature order
    assert signed.tolist() == [[-2.0, 0.5], [0.3, -0.3]]
    assert top_reasons(contributions, 10)[0].shape == (2, 3)  # never more than the features


def test_ndcg_is_one_for_the_same_order_and_drops_when_the_top_feature_moves():
    reference = np.array([5.0, 3.0, 1.0, 0.5])
    assert ndcg(reference, reference * 2) == pytest.approx(1.0)
    swapped_tail = ndcg(reference, np.array([5.0, 3.0, 0.4, 0.6]))
    top_last = ndcg(reference, np.array([0.1, 3.0, 1.0, 0.5]))
    assert 0.9 < swapped_tail < 1.0
    assert top_last < 0.9 < swapped_tail
    assert ndcg(np.zeros(3), np.array([1.0, 2.0, 3.0])) == 1.0


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_native_contributions_sum_to_the_raw_score_and_equal_lightgbm(task, trained_model):
    config, model = trained_model(task)
    matrix = model_matrix(awkward_rows(config), bind(model, config))

    native = NativeBooster(model.text).contributions(matrix, num_threads=2)

    assert native.shape == (len(matrix), matrix.shape[1] + 1)
    np.testing.assert_allclose(native, model.booster.predict(matrix, pred_contrib=True), rtol=0, atol=1e-12)
    np.testing.assert_allclose(native.sum(axis=1), model.booster.predict(matrix, raw_score=True), rtol=0, atol=1e-9)
    if task == "binary":  # log-odds: the probability is the sigmoid of the sum
        np.testing.assert_allclose(1 / (1 + np.exp(-native.sum(axis=1))), model.booster.predict(matrix), atol=1e-12)


def test_gain_importance_read_from_the_model_text_equals_lightgbm(trained_model):
    _, model = trained_model("binary")
    expected = dict(zip(model.booster.feature_name(), model.booster.feature_importance("gain")))
    got = gain_importance(model.text)
    assert list(got) == list(expected)
    np.testing.assert_allclose(list(got.values()), list(expected.values()), rtol=1e-6)
    assert gain_importance(b"not a model") == {}


def test_explainer_rows_name_the_feature_the_category_and_sum_back(trained_model):
    config, lgb_model = trained_model("binary")
    config = dataclasses.replace(config, explain=ExplainSettings(top_k=len(config.features), top_fraction=0.1))
    model = LoadedModel(1, NativeBooster(lgb_model.text), lgb_model.manifest)
    rows = awkward_rows(config)
    scores = model.booster.predict(model_matrix(rows, bind(model, config)))

    table = Explainer(model, config).reasons(rows, scores, {"run_key": 7, "partition": None})

    chosen = select_rows(scores, config.explain)
    assert len(chosen) == 500
    assert set(table["run_key"].to_pylist()) == {7} and table["partition"].null_count == table.num_rows
    frame = table.to_pandas()
    assert set(frame["entity_key"]) == set(rows[config.entity_key].take(pa.array(chosen)).to_pylist())
    # Every feature of a row at top_k = all features: contributions + expected value = raw score.
    raw = {k: np.log(s / (1 - s)) for k, s in zip(rows[config.entity_key].to_pylist(), scores)}
    expected_value = lgb_model.booster.predict(model_matrix(rows.slice(0, 1), bind(model, config)), pred_contrib=True)[
        0, -1
    ]
    sums = frame.groupby("entity_key")["contribution"].sum() + expected_value
    np.testing.assert_allclose(sums.values, [raw[k] for k in sums.index], atol=1e-9)
    ranks = frame.groupby("entity_key")["contribution"].apply(lambda c: list(np.abs(c)))
    assert all(r == sorted(r, reverse=True) for r in ranks)
    categories = frame[frame["feature"] == "merchant_category"]["value"].dropna()
    assert len(categories) and set(categories) <= set(config.features[5].categories) | {"crypto_exchange"}


@pytest.mark.parametrize(
    "section, message",
    [
        ("top_k = 3\n", "exactly one of 'min_score'"),
        ("min_score = 0.5\ntop_fraction = 0.1\n", "exactly one of"),
        ("top_fraction = 0\n", "must be in \\(0, 1\\]"),
        ("top_k = 0\ntop_fraction = 0.1\n", "at least 1"),
        ("top_fraction = 0.1\ntopk = 2\n", "unknown key 'explain.topk'"),
    ],
)
def test_explain_config_is_validated(tmp_path, section, message):
    path = config_copy(tmp_path, sections={"explain": section})
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_explain_is_off_unless_configured(tmp_path):
    assert load_config(config_copy(tmp_path, sections={"explain": None})).explain is None
    config = load_config(config_copy(tmp_path, sections={"explain": "min_score = 0.4\n"}))
    assert config.explain == ExplainSettings(top_k=3, min_score=0.4)
