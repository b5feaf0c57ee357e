"""MLflow as a source (extra `driftline[mlflow]`, client side: mlflow-skinny).

models:/<name>/<version>, models:/<name>@<alias> or runs:/<run>/<path>, lightgbm or sklearn
flavour. The artifacts are downloaded and read by handoff/files.py like any file, so the same
rules hold: LightGBM text, skops with driftline's trusted types (never MLflow's recorded list),
pickle only when pinned. MLflow as a destination (a retrained candidate logged as a version, the
alias following the champion) is registry/mlflow_mirror.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from driftline.config import DatasetConfig
from driftline.errors import BadModel
from driftline.handoff.files import ModelFile, read_model_file
from driftline.registry.mlflow_mirror import mlflow_client


class MlflowModelError(BadModel):
    """The MLflow model cannot be found or read; nothing is registered."""


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
    mlflow, client, tracking = mlflow_client(config)
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
