"""A retrained candidate made the way the champion was: driftline's own LightGBM from [model]
params; an imported LightGBM with the parameters recorded in its model file; an imported scikit-learn
model as sklearn.base.clone() of the champion's estimator fitted on the window's training rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from driftline import registry
from driftline.config import DatasetConfig
from driftline.errors import BadModel
from driftline.labelled import holdout_split, usable_rows
from driftline.training import TrainedModel, describe_fit, train

# Parameters of a saved Booster that describe its data or files, not how it learns: lgb.train
# gets them from the Dataset (categorical columns from the pandas dtypes) or must not see them.
_NOT_RECIPE = {
    "categorical_feature",
    "categorical_column",
    "cat_feature",
    "categorical_features",
    "data",
    "valid",
    "input_model",
    "output_model",
    "task",
    "config",
    "num_iterations",
    "num_iteration",
    "n_iter",
    "num_tree",
    "num_trees",
    "num_round",
    "num_rounds",
    "num_boost_round",
    "n_estimators",
    "max_bin_by_feature",
    "forcedsplits_filename",
    "forcedbins_filename",
    "saved_feature_importance_type",
}


def train_like_champion(conn, config: DatasetConfig, rows: pd.DataFrame) -> TrainedModel:
    """The candidate of the champion's recipe (driftline's own training when it has none recorded)."""
    version = registry.champion_version(conn, config.db_schema)
    champion = (
        None
        if version is None
        else registry.load_model(conn, config.db_schema, version, pinned_pickles=config.handoff.pickle_sha256)
    )
    if version is None or champion is None or not champion.manifest.get("recipe"):
        return train(config, rows)
    recipe = champion.manifest["recipe"]
    kind = champion.manifest.get("kind", "lightgbm")
    if kind == "lightgbm":
        params = {k: v for k, v in recipe["params"].items() if k not in _NOT_RECIPE}
        trained = train(replace(config, lightgbm_params=params, num_boost_round=int(recipe["num_boost_round"])), rows)
        manifest = {**trained.manifest, "kind": "lightgbm", "recipe": {**recipe, "from_version": version}}
        _write_back(config, trained.model_text, "lightgbm", manifest)
        return TrainedModel(model_text=trained.model_text, manifest=manifest)
    return _refit_estimator(config, rows, champion, recipe, version)


def _refit_estimator(config: DatasetConfig, rows: pd.DataFrame, champion, recipe: dict, version: int) -> TrainedModel:
    import skops.io as sio
    from sklearn.base import clone

    from driftline.registry.model_objects import DEFAULT_TRUSTED_TYPES, UntrustedModel
    from driftline.scoring.sklearn_model import SklearnModel

    history, excluded = usable_rows(config, rows)
    train_rows, holdout_rows, split = holdout_split(config, history)
    scorer = champion.booster
    estimator = clone(scorer.estimator).fit(
        scorer.input_frame(train_rows, config), train_rows[config.target].to_numpy()
    )
    fitted = SklearnModel(estimator, config.task, champion.manifest.get("positive_label"))
    holdout_scores = fitted.score(holdout_rows, config)
    # Before describe_fit: its scikit-learn metrics raise a bare ValueError on NaN (and a retry cannot help).
    if not np.all(np.isfinite(holdout_scores)):
        raise BadModel(f"the retrained copy of champion v{version} scores NaN or infinity on its holdout")
    data = sio.dumps(estimator)
    needed = tuple(sorted(sio.get_untrusted_types(data=data)))
    allowed = (
        set(DEFAULT_TRUSTED_TYPES) | set(config.handoff.trusted_types) | set(champion.manifest.get("trusted_types", ()))
    )
    refused = [name for name in needed if name not in allowed]
    if refused:
        raise UntrustedModel(
            f"the retrained copy of champion v{version} contains types not trusted: {', '.join(refused)}; list them "
            "in [handoff] trusted_types"
        )
    manifest = {
        "dataset": config.name,
        "task": config.task,
        "kind": "sklearn",  # a pinned-pickle champion's candidate is saved with skops
        "trusted_types": list(needed),
        "positive_label": champion.manifest.get("positive_label"),
        "features": [{"name": f.name, "type": f.type} for f in config.features],
        "categories": champion.manifest.get("categories", {}),
        "feature_contract": champion.manifest.get("feature_contract"),
        "recipe": {**recipe, "from_version": version},
        "origin": champion.manifest.get("origin"),
        **describe_fit(config, history, train_rows, holdout_rows, np.asarray(holdout_scores), excluded, split),
    }
    _write_back(config, estimator, "sklearn", manifest, data)
    return TrainedModel(model_text=data, manifest=manifest)


def _write_back(config: DatasetConfig, model, kind: str, manifest: dict, data: bytes | None = None) -> None:
    """[handoff] mlflow_register_as: the candidate also becomes an MLflow model version (alias untouched)."""
    if not config.handoff.mlflow_register_as:
        return
    from driftline.registry.mlflow_mirror import write_back

    if kind == "lightgbm":
        import lightgbm as lgb

        data, model = model.encode("utf-8"), lgb.Booster(model_str=model)
    assert data is not None, "an imported scikit-learn model is written back with its bytes"
    manifest["mlflow_version"] = write_back(
        config, model, kind, manifest.get("trusted_types", ()), registry.sha256_bytes(data)
    )
