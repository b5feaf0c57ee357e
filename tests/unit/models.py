"""Small trained models and awkward input rows that the scoring unit tests share."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa

from driftline.config import load_config
from driftline.devtools.demo_data import transactions
from driftline.registry import LoadedModel, sha256_bytes
from driftline.training import train
from tests.helpers import config_copy

DAY = datetime(2026, 10, 1, tzinfo=timezone.utc)


def config_for(tmp_path: Path, task: str, **params: str):
    """The demo config for task ("binary" or "regression"): 60 rounds, compiled engine, extra model params."""
    replace = [
        ("num_boost_round = 200", "num_boost_round = 60"),  # compiles in a few seconds
        ('engine = "lightgbm"', 'engine = "compiled"'),  # the demo's is lightgbm
    ]
    if task == "regression":
        replace += [
            ('task = "binary"', 'task = "regression"'),
            ('objective = "binary"', 'objective = "regression"'),
            ('\nmetric = "auc"', '\nmetric = "rmse"'),
            ("min_metric = 0.6", "min_metric = 1000000"),
        ]
    if params:
        replace.append(
            ("[model.params]\n", "[model.params]\n" + "".join(f"{key} = {value}\n" for key, value in params.items()))
        )
    return load_config(config_copy(tmp_path, replace, name=f"{task}.toml"))


def trained(config) -> LoadedModel:
    """A model trained on 20k demo rows (seeded) for config, loaded as the scoring path loads it."""
    history = transactions(np.random.default_rng(7), DAY, 20_000, "h")
    if config.task == "regression":
        history[config.target] = history["amount"] * 0.01 + history["transactions_last_24h"]
    model = train(config, history)
    text = model.model_text.encode("utf-8")
    return LoadedModel(
        version=1,
        booster=lgb.Booster(model_str=model.model_text),
        manifest=model.manifest,
        sha256=sha256_bytes(text),
        text=text,
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
