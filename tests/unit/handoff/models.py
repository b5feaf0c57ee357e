"""Tiny notebook-style models on demo rows for the import-model unit tests."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from driftline.devtools.demo_data import transactions

NUMERIC = ["amount", "account_age_days", "transactions_last_24h", "distance_from_home_km", "hour_of_day"]
CATEGORICAL = ["merchant_category", "channel"]
FEATURES = NUMERIC + CATEGORICAL


def rows(count: int = 600, seed: int = 3) -> pd.DataFrame:
    return transactions(np.random.default_rng(seed), datetime(2026, 10, 1, tzinfo=timezone.utc), count, "u")


def onehot_pipeline(frame: pd.DataFrame):
    """A derived feature (log amount) and a one-hot encoder around LightGBM: reasons impossible."""
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    features = ColumnTransformer(
        [
            ("log_amount", FunctionTransformer(np.log1p, feature_names_out="one-to-one"), ["amount"]),
            ("numeric", "passthrough", NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    model = Pipeline([("features", features), ("model", LGBMClassifier(n_estimators=15, verbose=-1))])
    return model.fit(frame[FEATURES], frame["is_fraud"].astype(int))


def column_keeping_pipeline(frame: pd.DataFrame):
    """An imputer on numerics and an ordinal encoder on categoricals (one column per input) + LightGBM."""
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    features = ColumnTransformer(
        [
            ("numeric", SimpleImputer(), NUMERIC),
            ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), CATEGORICAL),
        ]
    )
    model = Pipeline([("features", features), ("model", LGBMClassifier(n_estimators=15, verbose=-1))])
    return model.fit(frame[FEATURES], frame["is_fraud"].astype(int))


def booster(frame: pd.DataFrame, categorical: bool = True):
    import lightgbm as lgb

    typed = frame[FEATURES].copy()
    if categorical:
        for name in CATEGORICAL:
            typed[name] = typed[name].astype("category")
    else:  # the same columns as integer codes: LightGBM sees them as numbers
        for name in CATEGORICAL:
            typed[name] = typed[name].astype("category").cat.codes.astype("float64")
    params = {"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": 1}
    trained = lgb.train(params, lgb.Dataset(typed, frame["is_fraud"].astype(int)), 10)
    return lgb.Booster(model_str=trained.model_to_string())  # as import-model reads it: from its text


class NotebookScaler:
    """A notebook's own transformer: not a type driftline or skops trusts."""

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        return x
