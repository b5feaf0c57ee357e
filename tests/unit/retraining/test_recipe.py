"""Retraining an imported scikit-learn champion (retraining/recipe.py): what a broken refit raises."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from driftline.errors import BadModel
from tests.unit.handoff.models import FEATURES, rows


class NanClassifier(ClassifierMixin, BaseEstimator):
    """Fits, then scores NaN: what a notebook's estimator with a broken transform can do."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array(FEATURES, dtype=object)
        return self

    def predict_proba(self, X):
        return np.full((len(X), 2), np.nan)


def test_a_refit_that_scores_nan_is_a_model_error_before_any_metric(tmp_path):
    from driftline.config import load_config
    from driftline.retraining.recipe import _refit_estimator
    from driftline.scoring.sklearn_model import SklearnModel
    from tests.helpers import config_copy

    trusted = f'\n[handoff]\ntrusted_types = ["{__name__}.NanClassifier"]\n'  # past the skops check
    config = load_config(config_copy(tmp_path, append=trusted))
    frame = rows(400)
    champion = SimpleNamespace(
        booster=SklearnModel(NanClassifier().fit(frame[FEATURES], frame["is_fraud"]), "binary", 1),
        manifest={"kind": "sklearn", "positive_label": 1},
    )
    # Not sklearn's bare ValueError ("Input contains NaN"), which the task adapter would retry.
    with pytest.raises(BadModel, match="retrained copy of champion v3 scores NaN or infinity"):
        _refit_estimator(config, frame, champion, {"kind": "clone"}, 3)
