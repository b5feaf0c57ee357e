"""The feature contract at import: names, order and categorical levels, with both sides named."""

from __future__ import annotations

import numpy as np
import pytest

from driftline.errors import BadConfig
from driftline.handoff.contract import ContractError, check_contract
from driftline.scoring.sklearn_model import SklearnModel, explainable_parts
from tests.helpers import config_copy
from tests.unit.handoff.models import (
    CATEGORICAL,
    FEATURES,
    NUMERIC,
    booster,
    column_keeping_pipeline,
    onehot_pipeline,
    rows,
)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    from driftline.config import load_config

    return load_config(config_copy(tmp_path_factory.mktemp("contract")))


def test_a_pipeline_fitted_on_the_config_features_passes_with_its_encoder_levels(config):
    categories = check_contract(onehot_pipeline(rows()), "sklearn", config)
    assert set(categories) == set(CATEGORICAL)
    assert set(categories["channel"]) == {"card_present", "online", "contactless"}


def test_missing_features_name_both_sides(config):
    from lightgbm import LGBMClassifier

    frame = rows()
    numeric_only = LGBMClassifier(n_estimators=5, verbose=-1).fit(frame[NUMERIC], frame["is_fraud"])
    with pytest.raises(ContractError, match=r"only in the config: \['merchant_category', 'channel'\]"):
        check_contract(numeric_only, "sklearn", config)


def test_features_bind_by_name_whatever_order_the_notebook_used(config):
    frame = rows()
    reordered = FEATURES[::-1]
    model = column_keeping_pipeline(frame).fit(frame[reordered], frame["is_fraud"])
    check_contract(model, "sklearn", config)
    scored = SklearnModel(model, "binary")
    np.testing.assert_array_equal(scored.score(frame, config), model.predict_proba(frame[reordered])[:, 1])
    values = scored.contributions(frame.head(5), config, FEATURES)  # in the order asked for, bias last
    raw = model[-1].booster_.predict(model[:-1].transform(frame[reordered].head(5)), pred_contrib=True)
    produced = [name.split("__", 1)[-1] for name in model[:-1].get_feature_names_out()]
    for position, name in enumerate(FEATURES):
        np.testing.assert_array_equal(values[:, position], raw[:, produced.index(name)])
    np.testing.assert_allclose(
        values.sum(axis=1), model[-1].booster_.predict(model[:-1].transform(frame[reordered].head(5)), raw_score=True)
    )


def test_levels_the_config_lists_must_be_the_models(config, tmp_path):
    from driftline.config import load_config

    narrowed = load_config(
        config_copy(
            tmp_path, [('categories = ["card_present", "online", "contactless"]', 'categories = ["online", "atm"]')]
        )
    )
    with pytest.raises(
        ContractError, match=r"(?i)only in the config .*\['atm'\]; only in the model: \['card_present', 'contactless'\]"
    ):
        check_contract(onehot_pipeline(rows()), "sklearn", narrowed)


def test_a_booster_binds_its_pandas_categories_in_code_order(config):
    model = booster(rows())
    categories = check_contract(model, "lightgbm", config)
    assert categories["merchant_category"] == list(model.pandas_categorical[0])
    with pytest.raises(ContractError, match=r"the model treats none as categorical, the config .* declares"):
        check_contract(booster(rows(), categorical=False), "lightgbm", config)


def test_a_matrix_fitted_model_has_no_names_to_bind(config):
    from sklearn.linear_model import LogisticRegression

    frame = rows()
    model = LogisticRegression().fit(frame[FEATURES[:5]].fillna(0).to_numpy(), frame["is_fraud"])
    with pytest.raises(ContractError, match="fitted on a matrix"):
        check_contract(model, "sklearn", config)


def test_reasons_exist_for_column_keeping_pipelines_and_sum_to_the_raw_score(config):
    frame = rows()
    model = SklearnModel(column_keeping_pipeline(frame), "binary")
    values = model.contributions(frame.head(20), config)
    assert values.shape == (20, len(FEATURES) + 1)
    probabilities = model.score(frame.head(20), config)
    np.testing.assert_allclose(1 / (1 + np.exp(-values.sum(axis=1))), probabilities, rtol=1e-9)


def test_reasons_for_a_one_hot_pipeline_are_a_config_error_saying_why(config):
    with pytest.raises(BadConfig, match="does not keep one column per input"):
        explainable_parts(onehot_pipeline(rows()), config)


def test_a_regressor_scores_its_values_and_a_binary_dataset_needs_probabilities(config):
    from sklearn.linear_model import LinearRegression

    frame = rows()
    regressor = LinearRegression().fit(frame[FEATURES[:5]].fillna(0), frame["amount"])
    with pytest.raises(Exception, match="predict_proba"):
        SklearnModel(regressor, "binary")
    assert SklearnModel(regressor, "regression").estimator is regressor


def test_a_bare_lightgbm_estimator_scores_its_categoricals_as_in_the_notebook(config):
    from lightgbm import LGBMClassifier

    frame = rows()
    typed = frame[FEATURES].astype({name: "category" for name in CATEGORICAL})
    model = LGBMClassifier(n_estimators=10, verbose=-1).fit(typed, frame["is_fraud"])
    np.testing.assert_array_equal(SklearnModel(model, "binary").score(frame, config), model.predict_proba(typed)[:, 1])


def test_a_model_that_fails_on_rows_says_so_without_their_values(config):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = rows()
    strict = make_pipeline(OneHotEncoder(handle_unknown="error"), LogisticRegression()).fit(
        frame[FEATURES].fillna(0), frame["is_fraud"]
    )
    unseen = frame.head(3).assign(channel="never-seen-value")
    with pytest.raises(Exception, match="message is withheld") as failed:
        SklearnModel(strict, "binary").score(unseen, config)
    assert "never-seen-value" not in str(failed.value)
