"""import-model end to end on real PostgreSQL: a scikit-learn pipeline (skops), a raw LightGBM
Booster and an MLflow-registered model each go from the notebook to published predictions with
parity proven; a retrain keeps each one's recipe; bad files are refused and register nothing."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pytest

from driftline.batch import score_interval
from driftline.config import load_config
from driftline.drift.monitor import monitor_interval
from driftline.errors import BadConfig, BadModel
from driftline.handoff.contract import ContractError
from driftline.handoff.importer import import_model
from driftline.handoff.mlflow_source import MlflowModelError
from driftline.handoff.parity import ParityError
from driftline.registry.model_objects import UntrustedModel
from driftline.retraining.lifecycle import train_candidate
from tests.helpers import blocks_run_by, config_copy, config_variant, fetch, make_project, scalar
from tests.integration.handoff_fixtures import run_notebook, start_mlflow
from tests.integration.scenarios import ALL_LABELS, FIRST, WINDOW_END

NO_EXPLAIN = {"explain": None}  # the one-hot pipeline has no per-feature reasons (a test below says why)


@pytest.fixture(scope="module")
def project(tmp_path_factory, database_url, monkeypatch_module) -> Path:
    monkeypatch_module.setenv("DRIFTLINE_DB_URL", database_url)
    monkeypatch_module.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    root = tmp_path_factory.mktemp("handoff")
    return make_project(root, f"im_{uuid.uuid4().hex[:8]}", chunk_rows="1000")  # with the demo's [explain]


@pytest.fixture(scope="module")
def notebooks(project, tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("notebook")
    return {kind: run_notebook(project, out / kind, kind) for kind in ("sklearn", "lightgbm")}


def schema(project: Path, handoff: str = "", **keys: str) -> Path:
    """A fresh schema and registry over the project's data, without [explain], with this [handoff] body
    and keys ({key: TOML value})."""
    name = f"im_{uuid.uuid4().hex[:8]}"
    keys = {"schema": f'"{name}"', "registry_dir": f'"models/{name}"', **keys}
    append = f"\n[handoff]\n{handoff}" if handoff else ""
    return config_copy(
        project.parent.parent, base=project, name=f"{name}.toml", keys=keys, sections=NO_EXPLAIN, append=append
    )


def do_import(config: Path, saved: dict, source: str | None = None, predictions: str | None = None) -> dict:
    return import_model(
        str(config),
        source or saved["model"],
        predictions or saved["predictions"],
        saved["trained_until"],
        saved["sample"],
    )


def assert_published(config: Path, version: int) -> dict:
    summary = score_interval(str(config), *FIRST, run_id="handoff")
    assert summary["model_version"] == version and summary["rows_scored"] > 0
    published = scalar(config, "SELECT count(*) FROM {s}.predictions WHERE model_version = %s", (version,))
    assert published == summary["rows_scored"]
    return summary


def assert_parity_recorded(config: Path, version: int) -> None:
    [(passed, rows, result)] = fetch(
        config,
        "SELECT passed, holdout_rows, result FROM {s}.model_evaluations WHERE candidate_version = %s "
        "AND result->>'kind' = 'parity'",
        (version,),
    )
    assert passed and rows == result["rows_compared"] > 0 and result["rows_differ"] == 0


def tamper_trusted_types_and_see_it_refused(config: Path, version: int) -> None:
    """The trusted types are in the scoring hash: a manifest that trusts one more type is refused."""
    import json
    import os

    from driftline import db, registry

    uri = scalar(config, "SELECT artifact_uri FROM {s}.model_versions WHERE version = %s", (version,))
    path = registry.artifact_path(uri).parent / "manifest.json"
    original = path.read_text()
    manifest = json.loads(original)
    path.write_text(json.dumps({**manifest, "trusted_types": [*manifest["trusted_types"], "os.system"]}))
    try:
        with (
            db.connect(os.environ["DRIFTLINE_DB_URL"]) as conn,
            pytest.raises(registry.ModelLoadError, match="scoring hash"),
        ):
            registry.load_model(conn, load_config(config).db_schema, version)
    finally:
        path.write_text(original)


def registered(config: Path) -> int:
    """Versions in the schema's registry (0 when the refused import never even created the schema)."""
    exists = scalar(config, "SELECT to_regclass(%s) IS NOT NULL", (f"{load_config(config).db_schema}.model_versions",))
    return scalar(config, "SELECT count(*) FROM {s}.model_versions") if exists else 0


def test_a_sklearn_pipeline_goes_from_notebook_to_published_predictions_and_retrains_as_a_clone(project, notebooks):
    config = schema(project)
    summary = do_import(config, notebooks["sklearn"])
    assert summary["decision"] == "champion" and summary["parity"]["passed"]
    assert_parity_recorded(config, summary["version"])
    assert_published(config, summary["version"])
    manifest = scalar(config, "SELECT manifest FROM {s}.model_versions WHERE version = 1")
    assert manifest["kind"] == "sklearn" and "lightgbm.sklearn.LGBMClassifier" in manifest["trusted_types"]
    assert manifest["feature_contract"]["features"][0] == "amount" and manifest["libraries"]["skops"]

    tamper_trusted_types_and_see_it_refused(config, 1)
    drift = monitor_interval(str(config), *FIRST, run_id="handoff")
    assert drift["model_version"] == 1 and drift["attribution"] is None  # one-hot: no per-feature contributions

    candidate = train_candidate(str(config), "test", None, WINDOW_END, ALL_LABELS)
    retrained = scalar(config, "SELECT manifest FROM {s}.model_versions WHERE version = %s", (candidate["version"],))
    assert retrained["kind"] == "sklearn" and retrained["recipe"]["steps"] == manifest["recipe"]["steps"]
    assert retrained["recipe"]["from_version"] == 1


def test_a_column_keeping_pipeline_gets_reasons_on_its_inputs(project, tmp_path):
    from sklearn.base import clone

    from tests.unit.handoff.models import FEATURES, column_keeping_pipeline, rows

    unfitted = clone(column_keeping_pipeline(rows()))
    saved = run_notebook(project, tmp_path / "ordinal", "sklearn", unfitted)
    config = config_variant(project, f"im_{uuid.uuid4().hex[:8]}")  # the demo's [explain] on
    assert do_import(config, saved)["decision"] == "champion"
    assert_published(config, 1)
    reasons = fetch(config, "SELECT DISTINCT feature FROM {s}.prediction_reasons")
    assert reasons and {feature for (feature,) in reasons} <= set(FEATURES)


def test_a_raw_booster_keeps_its_parameters_and_the_compiled_path_through_import_and_retrain(project, notebooks):
    config = schema(project, engine='"compiled"')
    summary = do_import(config, notebooks["lightgbm"])  # parity through the compiled engine too
    assert summary["decision"] == "champion"
    assert_parity_recorded(config, summary["version"])
    assert assert_published(config, summary["version"])["scoring_engine"] == "compiled"
    candidate = train_candidate(str(config), "test", None, WINDOW_END, ALL_LABELS)
    retrained = scalar(config, "SELECT manifest FROM {s}.model_versions WHERE version = %s", (candidate["version"],))
    assert retrained["num_boost_round"] == 80 and retrained["params"]["num_leaves"] == 15
    assert retrained["params"]["learning_rate"] == 0.05 and retrained["recipe"]["from_version"] == 1


def test_a_second_import_is_a_candidate_judged_on_the_fair_holdout(project, notebooks):
    config = schema(project)
    do_import(config, notebooks["lightgbm"])
    second = do_import(config, notebooks["sklearn"])
    assert second["version"] == 2 and second["decision"] in ("promoted", "rejected")
    reasons = fetch(config, "SELECT holdout_reason FROM {s}.model_evaluations WHERE candidate_version = 2")
    assert len(reasons) == 2  # parity, then the same validation a retrained candidate gets


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    server, url = start_mlflow(tmp_path_factory.mktemp("mlflow"))
    yield url
    server.terminate()
    server.wait(timeout=30)


def test_an_mlflow_model_imports_by_alias_and_retrains_back_into_the_registry(project, notebooks, mlflow_server):
    import mlflow
    import skops.io as sio

    saved = notebooks["sklearn"]
    mlflow.set_tracking_uri(mlflow_server)
    name = f"fraud_{uuid.uuid4().hex[:6]}"
    pipeline = sio.load(saved["model"], trusted=sio.get_untrusted_types(file=saved["model"]))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            registered_model_name=name,
            serialization_format="skops",
            skops_trusted_types=sio.get_untrusted_types(file=saved["model"]),
        )
    client = mlflow.MlflowClient(mlflow_server)
    client.set_registered_model_alias(name, "notebook", info.registered_model_version)

    config = schema(project, f'mlflow_tracking_uri = "{mlflow_server}"\nmlflow_register_as = "{name}"\n')
    summary = do_import(config, saved, source=f"models:/{name}@notebook")
    assert summary["decision"] == "champion"
    origin = scalar(config, "SELECT manifest->'origin' FROM {s}.model_versions WHERE version = 1")
    assert origin["mlflow"]["model_version"] == str(info.registered_model_version)
    assert_published(config, 1)

    candidate = train_candidate(str(config), "test", None, WINDOW_END, ALL_LABELS)
    versions = client.search_model_versions(f"name = '{name}'")
    assert len(versions) == 2  # the candidate was written back...
    assert "champion" not in client.get_registered_model(name).aliases  # ...but no alias moved: not promoted
    from driftline.registry.mlflow_mirror import move_alias

    sha = scalar(config, "SELECT sha256 FROM {s}.model_versions WHERE version = %s", (candidate["version"],))
    assert move_alias(load_config(config), sha) == "2"  # what decide_promotion does when it promotes
    assert client.get_model_version_by_alias(name, "champion").version == "2"


def test_a_missing_mlflow_model_is_refused_and_registers_nothing(project, notebooks, mlflow_server):
    config = schema(project, f'mlflow_tracking_uri = "{mlflow_server}"\n')
    with pytest.raises(MlflowModelError, match="models:/no_such_model/3"):
        do_import(config, notebooks["sklearn"], source="models:/no_such_model/3")
    assert registered(config) == 0


def _wrong_features(saved: dict, folder: Path) -> str:
    import skops.io as sio
    from lightgbm import LGBMClassifier

    from tests.unit.handoff.models import NUMERIC, rows

    frame = rows()
    path = folder / "numeric_only.skops"
    sio.dump(LGBMClassifier(n_estimators=5, verbose=-1).fit(frame[NUMERIC], frame["is_fraud"]), path)
    return str(path)


def _untrusted(saved: dict, folder: Path) -> str:
    import pickle

    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    path = folder / "untrusted.skops"
    sio.dump(Pipeline([("f", FunctionTransformer(pickle.loads))]), path)
    return str(path)


def _pickle(saved: dict, folder: Path) -> str:
    import joblib
    import skops.io as sio

    path = folder / "model.joblib"
    joblib.dump(sio.load(saved["model"], trusted=sio.get_untrusted_types(file=saved["model"])), path)
    return str(path)


@pytest.mark.parametrize(
    ("make", "error", "says"),
    [
        (_wrong_features, ContractError, "only in the config: \\['merchant_category', 'channel'\\]"),
        (_untrusted, UntrustedModel, "_pickle.loads"),
        (_pickle, UntrustedModel, "pickle_sha256"),
    ],
)
def test_bad_files_are_refused_with_a_clear_error_and_register_nothing(project, notebooks, tmp_path, make, error, says):
    config = schema(project)
    with pytest.raises(error, match=says):
        do_import(config, notebooks["sklearn"], source=make(notebooks["sklearn"], tmp_path))
    assert registered(config) == 0


def test_a_parity_miss_says_how_many_and_by_how_much_and_registers_nothing(project, notebooks, tmp_path):
    saved = notebooks["sklearn"]
    predictions = pd.read_csv(saved["predictions"], dtype={"transaction_id": str})
    keys = set(predictions["transaction_id"])
    predictions.loc[predictions.index[:7], "score"] += 0.01  # the notebook predicted with another model
    path = tmp_path / "predictions.csv"
    predictions.to_csv(path, index=False)
    config = schema(project)
    with pytest.raises(ParityError, match=r"7 of \d+ rows differ by more than 1e-06 \(max abs diff 0\.01") as refused:
        do_import(config, saved, predictions=str(path))
    assert not any(key in str(refused.value) for key in keys)
    assert registered(config) == 0  # and so no evaluation either: the ledger rows need a version


def test_explain_with_a_one_hot_pipeline_is_a_config_error_at_import(project, notebooks):
    config = config_variant(project, f"im_{uuid.uuid4().hex[:8]}")  # the demo's [explain] kept
    with pytest.raises(BadConfig, match="does not keep one column per input"):
        do_import(config, notebooks["sklearn"])
    assert registered(config) == 0
    assert issubclass(ContractError, BadModel)


def readme_handoff_commands() -> list[str]:
    """The bash block of the docs page "Bring your own model" marked to run here, one command a line."""
    (block,) = blocks_run_by("docs/bring-your-own-model.md", "tests/integration/test_import_model.py")
    return [line for line in block.splitlines() if line.strip()]


def test_the_readme_hand_off_runs_as_documented(project, tmp_path, database_url):
    """Notebook -> init-config -> suite -> import-model -> score, exactly the README's commands, in a
    copy of the demo project; the published predictions come from the imported version."""
    import os
    import shutil
    import subprocess
    import sys

    root = tmp_path / "demo"
    shutil.copytree(project.parent.parent / "data", root / "data")
    bin_dir = Path(sys.executable).parent
    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "examples", root / "examples")
    env = {
        **os.environ,
        "DRIFTLINE_HOME": str(root),
        "DRIFTLINE_DB_URL": database_url,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }
    for command in readme_handoff_commands():
        done = subprocess.run(["bash", "-c", command], cwd=root, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
    config = root / "config" / "fraud_handoff.toml"
    assert scalar(config, "SELECT count(*) FROM {s}.model_versions WHERE status = 'champion'") == 1
    assert scalar(config, "SELECT count(*) FROM {s}.predictions WHERE model_version = 1") > 0


def test_an_imported_candidate_awaiting_approval_is_judged_by_retrain_model_without_training(
    project, notebooks, retrain_dag
):
    # Loose guardrails: the second import must pass them and wait for a reviewer, not be rejected.
    manual = schema(project, promotion='"manual"', max_regression="1.0", min_metric="0.0")
    do_import(manual, notebooks["sklearn"])
    second = do_import(manual, notebooks["lightgbm"])  # beats the sklearn champion on the shared holdout
    assert second["decision"] == "awaiting_approval" and second["version"] == 2
    dag = f"{load_config(manual).name}__retrain_model"
    assert second["approve_with"] == (
        f'airflow dags trigger {dag} --conf \'{{"reason": "approve imported candidate v2", "candidate_version": 2}}\''
    )
    # dag.test cannot answer approve_promotion: the same schema under auto promotion stands in for the reviewer.
    auto = config_copy(
        project.parent.parent, base=manual, name=f"{manual.stem}_auto.toml", keys={"promotion": '"auto"'}
    )
    run = retrain_dag.test(run_conf={"config": str(auto), "reason": "approve imported v2", "candidate_version": 2})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success" and states["decide_promotion"].endswith("success")
    assert registered(manual) == 2  # judged, not retrained: no new version
    [(status,)] = fetch(manual, "SELECT status FROM {s}.model_versions WHERE version = 2")
    assert status == "champion"  # it passed at import; retrain_model's decision (auto here) promotes it
    [(action, reason)] = fetch(manual, "SELECT action, reason FROM {s}.promotion_events WHERE to_version = 2")
    assert action == "promote" and "approve imported v2" in reason
    evaluations = fetch(manual, "SELECT holdout_reason FROM {s}.model_evaluations WHERE candidate_version = 2")
    assert len(evaluations) == 3  # parity, the import's validation, then retrain_model's own

    # A version that is not a pending candidate (judged now, the first champion, unknown) fails at once.
    for version in (2, 1, 99):
        run = retrain_dag.test(run_conf={"config": str(auto), "reason": "again", "candidate_version": version})
        [train] = [ti for ti in run.get_task_instances() if ti.task_id == "train_candidate"]
        assert str(train.state).endswith("failed") and train.try_number == 1, version
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        assert not states["validate_candidate"].endswith("success")
    assert registered(manual) == 2
    assert len(fetch(manual, "SELECT 1 FROM {s}.model_evaluations WHERE candidate_version = 2")) == 3


def test_a_version_that_is_not_a_pending_candidate_is_a_config_error_naming_it(project, notebooks):
    from driftline.retraining.pending import pending_candidate

    config = schema(project)
    do_import(config, notebooks["lightgbm"])
    for version, state in ((1, "champion"), (7, "not registered")):
        with pytest.raises(BadConfig, match=rf"candidate_version {version}: the version is {state} in schema"):
            pending_candidate(str(config), version)


def test_a_pinned_pickle_scores_while_pinned_and_is_refused_once_its_pin_is_removed(project, notebooks, tmp_path):
    import hashlib

    saved = notebooks["sklearn"]
    source = _pickle(saved, tmp_path)
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    config = schema(project, handoff=f'pickle_sha256 = ["{digest}"]')
    version = do_import(config, saved, source=source)["version"]
    assert_published(config, version)
    unpinned = config_copy(config.parent.parent, base=config, name="unpinned.toml", keys={"pickle_sha256": "[]"})
    with pytest.raises(BadConfig, match=r"\[handoff\] pickle_sha256, and [0-9a-f]{64} is not pinned"):
        score_interval(str(unpinned), *FIRST, run_id="unpinned")
