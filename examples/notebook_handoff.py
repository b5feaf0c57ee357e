"""A "notebook" that trains the demo's fraud model its own way and hands it to driftline.

What a data scientist would run in Jupyter, as a script: read the labelled history, train on the
older rows, predict the newest ones, and save three files for `driftline import-model`:

    model.skops (or model.txt)  the model: a scikit-learn Pipeline saved with skops (never pickle),
                                or with --kind lightgbm a raw Booster saved with Booster.save_model
    sample.csv                  the rows the notebook predicted (input columns, no label)
    predictions.csv             the notebook's own predictions for them: transaction_id, score
    trained_until.txt           the newest event time it trained on (validation's fair holdout starts after)

The pipeline has a derived feature (log of the amount, beside the raw amount) and a one-hot encoder
for the categorical columns, around LightGBM. Usage (see README "Bring your own model"):

    python examples/notebook_handoff.py --history data/demo_transactions/history.parquet --out handoff
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

KEY, TIME, TARGET = "transaction_id", "event_time", "is_fraud"
NUMERIC = ["amount", "account_age_days", "transactions_last_24h", "distance_from_home_km", "hour_of_day"]
CATEGORICAL = ["merchant_category", "channel"]
FEATURES = NUMERIC + CATEGORICAL  # the order the config lists them in
PARAMS = {"n_estimators": 80, "learning_rate": 0.05, "num_leaves": 15, "random_state": 7, "verbose": -1}


def sklearn_pipeline():
    """ColumnTransformer (derived log amount, numerics, one-hot categoricals) + LGBMClassifier."""
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
    return Pipeline([("features", features), ("model", LGBMClassifier(**PARAMS))])


def split(history: pd.DataFrame, fraction: float = 0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Older rows to train on, the newest ones to predict (by event time, as driftline splits)."""
    history = history.sort_values([TIME, KEY]).reset_index(drop=True)
    cut = int(len(history) * fraction)
    return history.iloc[:cut], history.iloc[cut:]


def train_and_save(history: pd.DataFrame, out: Path, kind: str = "sklearn", pipeline=None) -> dict:
    """Train, predict the newest rows, save model + sample + predictions; returns what import-model needs.

    pipeline: another (unfitted) scikit-learn estimator to train instead of sklearn_pipeline()."""
    train, newest = split(history)
    out.mkdir(parents=True, exist_ok=True)
    y = train[TARGET].astype(int)
    if kind == "sklearn":
        import skops.io as sio

        model = (pipeline if pipeline is not None else sklearn_pipeline()).fit(train[FEATURES], y)
        scores = model.predict_proba(newest[FEATURES])[:, 1]
        model_path = out / "model.skops"
        sio.dump(model, model_path)
    else:
        import lightgbm as lgb

        def frame(rows):
            typed = rows[FEATURES].copy()
            for name in CATEGORICAL:
                typed[name] = typed[name].astype("category")
            return typed

        params = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "seed": 7, "verbose": -1}
        booster = lgb.train(params, lgb.Dataset(frame(train), label=y), num_boost_round=80)
        scores = booster.predict(frame(newest))
        model_path = out / "model.txt"
        booster.save_model(str(model_path))
    newest.drop(columns=[TARGET]).to_csv(out / "sample.csv", index=False)
    pd.DataFrame({KEY: newest[KEY], "score": scores}).to_csv(out / "predictions.csv", index=False, float_format="%.17g")
    trained_until = pd.Timestamp(train[TIME].max()).isoformat()
    (out / "trained_until.txt").write_text(trained_until + "\n")  # import-model --trained-until
    return {
        "model": str(model_path),
        "sample": str(out / "sample.csv"),
        "predictions": str(out / "predictions.csv"),
        "trained_until": trained_until,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", required=True, help="labelled history (Parquet or CSV)")
    parser.add_argument("--out", required=True, help="folder for model, sample.csv, predictions.csv")
    parser.add_argument("--kind", choices=("sklearn", "lightgbm"), default="sklearn")
    args = parser.parse_args(argv)
    path = Path(args.history)
    history = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, parse_dates=[TIME])
    saved = train_and_save(history, Path(args.out), args.kind)
    print(json.dumps(saved, indent=2))
    return saved


if __name__ == "__main__":
    main()
