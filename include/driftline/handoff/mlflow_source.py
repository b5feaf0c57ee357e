"""MLflow as a source and a destination (extra `driftline[mlflow]`, client side: mlflow-skinny).

Source: models:/<name>/<version>, models:/<name>@<alias> or runs:/<run>/<path>, lightgbm or sklearn
flavour. The artifacts are downloaded and read by handoff/files.py like any file, so the same
rules hold: LightGBM text, skops with driftline's trusted types (never MLflow's recorded list),
pickle only when pinned. Destination: with [handoff] mlflow_register_as, a retrained candidate is
logged as a new version of that registered model (tagged with its driftline version and sha256),
and [handoff] mlflow_alias moves to a version only when driftline makes it champion.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from driftline.config import DatasetConfig
from driftline.errors import BadConfig, BadModel
from driftline.handoff.files import ModelFile, read_model_file

log = logging.getLogger(__name__)
SHA256_TAG = "driftline_sha256"  # MLflow tag filters take plain names
DATASET_TAG = "driftline_dataset"


class MlflowModelError(BadModel):
    """The MLflow model cannot be found or read; nothing is registered."""


def _client(config: DatasetConfig):
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


def _described(uri: str, client) -> dict:
    """Registry name, version and run of a models:/ URI (the alias resolved now), or the run of a runs:/ URI."""
    if uri.startswith("runs:/"):
        return {"run_id": uri.removeprefix("runs:/").split("/", 1)[0]}
    name, _, rest = uri.removeprefix("models:/").partition("/")
    if "@" in name:
        name, alias = name.split("@", 1)
        found = client.get_model_version_by_alias(name, alias)
    else:
        found = client.get_model_version(name, rest.strip("/"))
    return {"model_name": found.name, "model_version": str(found.version), "run_id": found.run_id}


def read_mlflow_model(uri: str, config: DatasetConfig) -> tuple[ModelFile, dict]:
    """Download an MLflow model, read its flavour's file under driftline's rules; (model, origin)."""
    mlflow, client, tracking = _client(config)
    try:
        described = _described(uri, client)
        # The version resolved above, not the alias again: an alias moved in between would fetch another model.
        pinned = (
            f"models:/{described['model_name']}/{described['model_version']}" if "model_version" in described else uri
        )
        with tempfile.TemporaryDirectory(prefix="driftline-mlflow-") as folder:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=pinned, dst_path=folder))
            flavor, name = _flavour(local / "MLmodel", uri)
            settings = config.handoff
            model_file = read_model_file(local / name, settings.trusted_types, settings.pickle_sha256)
    except mlflow.exceptions.MlflowException as exc:
        raise MlflowModelError(
            f"{uri}: not found or not readable on the MLflow server {_masked(tracking)}: {exc.error_code}: "
            f"{exc.message.splitlines()[0][:300]}. Check the name, version or alias (nothing was registered)"
        ) from exc
    except OSError as exc:
        raise MlflowModelError(f"{uri}: the downloaded model has no readable MLmodel or model file: {exc}") from exc
    model_file.source = uri
    return model_file, {"source": uri, "mlflow": {"tracking_uri": _masked(tracking), "flavor": flavor, **described}}


def _flavour(mlmodel: Path, uri: str) -> tuple[str, str]:
    """(flavour, model file name) from an MLmodel file; MlflowModelError when it is not one driftline reads."""
    import yaml

    try:
        document = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MlflowModelError(
            f"{uri}: its MLmodel file is not valid YAML ({type(exc).__name__}); log the model again with MLflow"
        ) from exc
    flavors = document.get("flavors") if isinstance(document, dict) else None
    if not isinstance(flavors, dict):
        raise MlflowModelError(f"{uri}: its MLmodel file has no 'flavors' mapping; log the model again with MLflow")
    for flavor, key in (("lightgbm", "data"), ("sklearn", "pickled_model")):
        if flavor in flavors:
            entry = flavors[flavor]
            name = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(name, str) or not name:
                raise MlflowModelError(
                    f"{uri}: its MLmodel {flavor} flavour names no model file ('{key}'); log the model again with MLflow"
                )
            return flavor, name
    raise MlflowModelError(f"{uri}: flavours {sorted(flavors)}; driftline imports the lightgbm and sklearn flavours")


def _masked(uri: str) -> str:
    from driftline.secrets import mask_url

    return mask_url(uri)


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
    mlflow, client, _ = _client(config)
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
        _, client, _ = _client(config)
        found = _versions_of(client, name, sha256)
        if not found:
            return None
        version = str(max(int(v.version) for v in found))
        client.set_registered_model_alias(name, config.handoff.mlflow_alias, version)
        return version
    except Exception as exc:  # noqa: BLE001 - MLflow's own errors, network: the promotion stands
        log.warning("MLflow alias %s of %s not moved: %s", config.handoff.mlflow_alias, name, type(exc).__name__)
        return None
