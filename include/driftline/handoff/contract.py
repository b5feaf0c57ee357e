"""The feature contract: a model's own feature names, order and categorical levels against the
config's [features]; checked at import so a mismatch fails there, naming both sides, and never as
silently wrong scores. Also what a starting config is written from (handoff/starter.py)."""

from __future__ import annotations

from driftline.config import DatasetConfig
from driftline.errors import BadModel


class ContractError(BadModel):
    """The model and the config disagree on the features; nothing is registered."""


def model_features(model, kind: str) -> list[str]:
    """The model's own input column names, in its order."""
    if kind == "lightgbm":
        return list(model.feature_name())
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise ContractError(
            f"the model ({type(model).__name__}) records no input column names: it was fitted on a matrix. Fit it "
            "on a pandas DataFrame (one column per feature) so driftline can bind its features by name"
        )
    return [str(name) for name in names]


def model_levels(model, kind: str) -> dict[str, list]:
    """Categorical levels the model learned, by feature: LightGBM's pandas categories (in the order
    its codes mean), or the categories_ of each encoder inside a scikit-learn pipeline."""
    if kind == "lightgbm":
        names = model.feature_name()
        positions = _categorical_positions(model)
        recorded = [list(map(str, levels)) for levels in (model.pandas_categorical or [])]
        if len(recorded) != len(positions):
            return {names[i]: [] for i in positions}
        return {names[i]: levels for i, levels in zip(positions, recorded)}
    return _encoder_levels(model)


def _categorical_positions(booster) -> list[int]:
    """The Booster's categorical columns, as recorded in its parameters (categorical_feature)."""
    value = booster.params.get("categorical_feature", [])
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    if isinstance(value, int):
        value = [value]
    return sorted(int(v) for v in value)


def _encoder_levels(estimator) -> dict[str, list]:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    found: dict[str, list] = {}

    def visit(step, columns) -> None:
        if isinstance(step, Pipeline):
            for _, inner in step.steps:
                visit(inner, columns)
                columns = None  # after the first step the columns are no longer the inputs
        elif isinstance(step, ColumnTransformer):
            for _, inner, selected in getattr(step, "transformers_", []):
                if isinstance(selected, str):
                    selected = [selected]
                names = [c for c in selected if isinstance(c, str)] if selected is not None else []
                visit(inner, names or None)
        elif columns and hasattr(step, "categories_") and len(step.categories_) == len(columns):
            for name, levels in zip(columns, step.categories_):
                found[name] = [level for level in levels.tolist() if level == level and level is not None]

    visit(estimator, list(getattr(estimator, "feature_names_in_", [])) or None)
    return found


def check_contract(model, kind: str, config: DatasetConfig) -> dict[str, list[str]]:
    """Raise ContractError unless the model's features are the config's, by name (columns bind by
    name, so the order of [features] does not matter), with compatible categories; returns the
    categories scoring uses, per categorical feature."""
    names = model_features(model, kind)
    if sorted(names) != sorted(config.feature_names) or len(set(names)) != len(names):
        raise ContractError(_names_message(names, config.feature_names, config))
    if kind == "lightgbm":
        return _lightgbm_categories(model, config)
    levels = _encoder_levels(model)
    categories = {}
    for feature in config.features:
        learned = levels.get(feature.name)
        if feature.type == "numeric" and learned is not None and any(isinstance(v, str) for v in learned):
            raise ContractError(
                f"feature {feature.name!r}: the config ({config.path}) says numeric, the model encodes it as "
                f'categorical ({len(learned)} levels); set its type to "categorical" in [features.{feature.name}]'
            )
        if feature.type == "categorical":
            learned = [str(v) for v in learned] if learned is not None else list(feature.categories or [])
            _compare_levels(feature, learned, config)
            categories[feature.name] = learned
    return categories


def _lightgbm_categories(booster, config: DatasetConfig) -> dict[str, list[str]]:
    learned = model_levels(booster, "lightgbm")  # in the model's column order
    wanted = config.categorical_features
    if sorted(learned) != sorted(wanted) or any(not levels for levels in learned.values()):
        raise ContractError(
            f"categorical features: the model treats {list(learned) or 'none'} as categorical, the config "
            f"({config.path}) declares {wanted or 'none'}. Train the Booster on a DataFrame whose categorical "
            "columns have the category dtype (their levels are saved with it), or fix the types in [features]"
        )
    categories = dict(learned)
    for feature in config.features:
        if feature.type == "categorical":
            _compare_levels(feature, categories[feature.name], config)
    return categories


def _compare_levels(feature, learned: list[str], config: DatasetConfig) -> None:
    if not feature.categories:
        return
    declared = set(feature.categories)
    only_config, only_model = sorted(declared - set(learned)), sorted(set(learned) - declared)
    if only_config or only_model:
        raise ContractError(
            f"feature {feature.name!r}: categories differ. Only in the config ({config.path}): "
            f"{only_config or 'none'}; only in the model: {only_model or 'none'}. Make [features.{feature.name}] "
            "categories the levels the model was trained with"
        )


def _names_message(model_names: list[str], config_names: list[str], config: DatasetConfig) -> str:
    missing, extra = (
        [n for n in model_names if n not in config_names],
        [n for n in config_names if n not in model_names],
    )
    detail = (
        f"only in the model: {missing or 'none'}; only in the config: {extra or 'none'}"
        if missing or extra
        else "a name appears twice in the model"
    )
    return (
        f"the model's features do not match the config ({config.path}): model {model_names}, config [features] "
        f"{config_names} ({detail}). List [features] with the model's names "
        "(`driftline init-config` writes them from the model)"
    )
