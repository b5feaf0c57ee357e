"""Typed, validated dataset config loaded from one TOML file per dataset.

DAG files import this package at parse time; it uses the standard library and pydantic v2, which
airflow.sdk imports there anyway. Every dataset specific (column names, paths, thresholds) lives in
the config file; package code reads them from here and never names a dataset column.
model.py: the settings tables (pydantic dataclasses); file.py: the file's sections and the checks
across them; checks.py: value checks; messages.py: pydantic errors as ConfigError (file and key);
dataset.py: DatasetConfig, the flat view; load.py: load_config; reference.py: the key reference;
deployment.py: every config of a deployment (the configs folder, or $DRIFTLINE_CONFIG alone);
handoff.py: [handoff], what `driftline import-model` trusts.
"""

from driftline.config.dataset import DatasetConfig
from driftline.config.deployment import Datasets, load_datasets
from driftline.config.errors import ConfigError
from driftline.config.handoff import HandoffSettings
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
    DriftPolicy,
    DriftSettings,
    ExplainSettings,
    Feature,
    MonitoringSettings,
    RetrainingPolicy,
    Safeguards,
    SourceSettings,
    SqlInput,
    SqlInterval,
)

__all__ = [
    "HandoffSettings",
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
    "MonitoringSettings",
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
