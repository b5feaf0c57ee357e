"""Typed, validated dataset config loaded from one TOML file per dataset.

Kept light on purpose: DAG files import this package at parse time, so it uses only the standard
library (tomllib, dataclasses). Every dataset specific (column names, paths, thresholds) lives in
the config file; package code reads them from here and never names a dataset column.
model.py: the dataclasses; checks.py: allowed keys (derived from them) and value checks;
sections.py: the structured sections; load.py: load_config; deployment.py: every config of a
deployment (the configs folder, or $DRIFTLINE_CONFIG alone).
"""

from driftline.config.deployment import Datasets, load_datasets
from driftline.config.load import default_config_path, default_configs_dir, load_config
from driftline.config.model import (
    CATEGORICAL_DRIFT_METHODS,
    DEFAULT_MAX_RECORD_BYTES,
    ESTIMATED_METRICS,
    FEATURE_TYPES,
    METRIC_DIRECTIONS,
    NUMERIC_DRIFT_METHODS,
    PREDICTION_DRIFT_METHODS,
    PROMOTION_MODES,
    SCORING_ENGINES,
    TASK_METRICS,
    TASK_TYPES,
    VALIDATION_ENGINES,
    AlertSettings,
    ConfigError,
    DatasetConfig,
    DriftPolicy,
    DriftSettings,
    ExplainSettings,
    Feature,
    RetrainingPolicy,
    Safeguards,
    SourceSettings,
    SqlInput,
    SqlInterval,
)

__all__ = [
    "CATEGORICAL_DRIFT_METHODS",
    "DEFAULT_MAX_RECORD_BYTES",
    "ESTIMATED_METRICS",
    "FEATURE_TYPES",
    "METRIC_DIRECTIONS",
    "NUMERIC_DRIFT_METHODS",
    "PREDICTION_DRIFT_METHODS",
    "PROMOTION_MODES",
    "SCORING_ENGINES",
    "TASK_METRICS",
    "TASK_TYPES",
    "VALIDATION_ENGINES",
    "AlertSettings",
    "ConfigError",
    "DatasetConfig",
    "Datasets",
    "DriftPolicy",
    "DriftSettings",
    "ExplainSettings",
    "Feature",
    "RetrainingPolicy",
    "Safeguards",
    "SourceSettings",
    "SqlInput",
    "SqlInterval",
    "default_config_path",
    "default_configs_dir",
    "load_config",
    "load_datasets",
]
