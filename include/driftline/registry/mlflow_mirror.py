"""driftline's registry mirrored into MLflow ([handoff] mlflow_register_as; extra `driftline[mlflow]`,
client side: mlflow-skinny): a retrained candidate is logged as a new version of that registered
model (tagged with its driftline dataset and sha256), and [handoff] mlflow_alias moves to a version
only when driftline makes it champion. Reading a model from MLflow is handoff/mlflow_source.py's.
"""

from __future__ import annotations

import logging
import os

from driftline.config import DatasetConfig
from driftline.errors import BadConfig

log = logging.getLogger(__name__)
SHA256_TAG = "driftline_sha256"  # MLflow tag filters take plain names
DATASET_TAG = "driftline_dataset"


def mlflow_client(config: DatasetConfig):
    """(the mlflow module, a client, the tracking URI) for [handoff] mlflow_tracking_uri or
    $MLFLOW_TRACKING_URI; BadConfig when the client is not installed or no server is named."""
    try:
        import mlflow
    except ImportError as exc:
        raise BadConfig(
            "MLflow model URIs need the MLflow client: pip install 'driftline[mlflow]' (mlflow-skinny)"
        ) from exc
    uri = config.handoff.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise BadConfig(
            f"{config.path}: an MLflow URI needs a tracking server: set [handoff] mlflow_tracking_uri or $MLFLOW_TRACKING_URI"
        )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri), uri


def _literal(value: str) -> str:
    """value as a quoted literal of an MLflow search filter; BadConfig for one a quote would break out of
    (config.handoff checks mlflow_register_as against a pattern without quotes first)."""
    if "'" in value or '"' in value or "\\" in value:
        raise BadConfig("[handoff] mlflow_register_as: an MLflow model name cannot contain quotes or backslashes")
    return f"'{value}'"


def _versions_of(client, name: str, sha256: str) -> list:
    return client.search_model_versions(f"name = {_literal(name)} and tags.{SHA256_TAG} = {_literal(sha256)}")


def write_back(config: DatasetConfig, model_object, kind: str, trusted_types, sha256: str) -> str | None:
    """Log a retrained candidate as a new version of [handoff] mlflow_register_as, tagged with its
    sha256 (no alias moved; the same artifact is logged once); the MLflow version, or None when off."""
    name = config.handoff.mlflow_register_as
    if not name:
        return None
    mlflow, client, _ = mlflow_client(config)
    known = _versions_of(client, name, sha256)
    if known:
        return str(known[0].version)
    tags = {SHA256_TAG: sha256, DATASET_TAG: config.name}
    with mlflow.start_run(run_name=f"driftline {config.name} candidate {sha256[:12]}", tags=tags):
        if kind == "lightgbm":
            info = mlflow.lightgbm.log_model(model_object, name="model", registered_model_name=name)
        else:
            info = mlflow.sklearn.log_model(
                model_object,
                name="model",
                registered_model_name=name,
                serialization_format="skops",
                skops_trusted_types=list(trusted_types),
            )
    registered = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(name, registered, key, value)
    return registered


def move_alias(config: DatasetConfig, sha256: str) -> str | None:
    """After driftline promoted this artifact: point [handoff] mlflow_alias at its MLflow version.

    The promotion has committed; an MLflow failure is logged, never undoes it (rerun to retry)."""
    name = config.handoff.mlflow_register_as
    if not name:
        return None
    try:
        _, client, _ = mlflow_client(config)
        found = _versions_of(client, name, sha256)
        if not found:
            return None
        version = str(max(int(v.version) for v in found))
        client.set_registered_model_alias(name, config.handoff.mlflow_alias, version)
        return version
    except Exception as exc:  # noqa: BLE001 - MLflow's own errors, network: the promotion stands
        log.warning("MLflow alias %s of %s not moved: %s", config.handoff.mlflow_alias, name, type(exc).__name__)
        return None
