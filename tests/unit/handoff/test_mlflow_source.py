"""MLflow as a source, without a server: a fake client and download stand in for MLflow's, so what is
checked is driftline's reading of what comes back (MLmodel files, aliases, search filters)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from driftline.errors import BadConfig
from driftline.handoff import mlflow_source
from driftline.handoff.mlflow_source import MlflowModelError, read_mlflow_model
from driftline.registry import mlflow_mirror
from tests.unit.handoff.models import booster, rows


class _MlflowError(Exception):
    error_code, message = "RESOURCE_DOES_NOT_EXIST", "not found"


class _Client:
    """Resolves the alias to version 3 once, then (another user moved it) to version 4."""

    def __init__(self):
        self.resolved = iter(["3", "4"])
        self.filters = []

    def get_model_version_by_alias(self, name, alias):
        return SimpleNamespace(name=name, version=next(self.resolved), run_id="run-1")

    def get_model_version(self, name, version):
        return SimpleNamespace(name=name, version=version, run_id="run-1")

    def search_model_versions(self, text):
        self.filters.append(text)
        return []


def _fake_mlflow(monkeypatch, tmp_path, mlmodel: str | None, model_file: tuple[str, bytes] | None = None):
    downloads = []

    def download_artifacts(artifact_uri, dst_path):
        downloads.append(artifact_uri)
        folder = Path(dst_path) / "model"
        folder.mkdir()
        if mlmodel is not None:
            (folder / "MLmodel").write_text(mlmodel)
        if model_file is not None:
            (folder / model_file[0]).write_bytes(model_file[1])
        return str(folder)

    mlflow = SimpleNamespace(
        artifacts=SimpleNamespace(download_artifacts=download_artifacts),
        exceptions=SimpleNamespace(MlflowException=_MlflowError),
    )
    client = _Client()
    for module in (mlflow_source, mlflow_mirror):
        monkeypatch.setattr(module, "mlflow_client", lambda config: (mlflow, client, "http://mlflow.test"))
    return downloads, client


def _config(tmp_path):
    from driftline.config import load_config
    from tests.helpers import config_copy

    return load_config(config_copy(tmp_path))


@pytest.mark.parametrize(
    ("mlmodel", "says"),
    [
        ("", "no 'flavors' mapping"),
        ("- a list\n- not a mapping\n", "no 'flavors' mapping"),
        ("flavors: [unclosed\n", "not valid YAML"),
        ("flavors:\n  lightgbm:\n    model_class: lightgbm.Booster\n", "lightgbm flavour names no model file"),
        ("flavors:\n  sklearn: {}\n", "sklearn flavour names no model file"),
        ("flavors:\n  python_function: {}\n", "driftline imports the lightgbm and sklearn flavours"),
    ],
    ids=["empty", "not_a_mapping", "bad_yaml", "no_data", "no_pickled_model", "other_flavour"],
)
def test_a_broken_mlmodel_file_is_a_model_error_naming_the_uri(monkeypatch, tmp_path, mlmodel, says):
    _fake_mlflow(monkeypatch, tmp_path, mlmodel)
    with pytest.raises(MlflowModelError, match=f"models:/fraud/3: .*{says}"):
        read_mlflow_model("models:/fraud/3", _config(tmp_path))


def test_an_alias_is_resolved_once_and_that_version_is_downloaded(monkeypatch, tmp_path):
    text = booster(rows(200)).model_to_string().encode()
    mlmodel = "flavors:\n  lightgbm:\n    data: model.lgb\n"
    downloads, _ = _fake_mlflow(monkeypatch, tmp_path, mlmodel, ("model.lgb", text))
    model_file, origin = read_mlflow_model("models:/fraud@champion", _config(tmp_path))
    assert downloads == ["models:/fraud/3"]  # not the alias again, which now points at version 4
    assert origin["mlflow"]["model_version"] == "3" and model_file.kind == "lightgbm"
    assert model_file.source == "models:/fraud@champion"


def test_a_registered_name_with_a_quote_never_reaches_the_search_filter(monkeypatch, tmp_path):
    # config.handoff refuses such a name at load (tests/unit/config/test_handoff.py); this is the second guard.
    _, client = _fake_mlflow(monkeypatch, tmp_path, None)
    assert mlflow_mirror._versions_of(client, "fraud", "ab" * 32) == []
    assert client.filters == [f"name = 'fraud' and tags.{mlflow_mirror.SHA256_TAG} = '{'ab' * 32}'"]
    with pytest.raises(BadConfig, match="mlflow_register_as"):
        mlflow_mirror._versions_of(client, "fraud' or name = 'other", "ab" * 32)
