"""A small project on disk (config, suite, synthetic data, trained champion) per test module, and
the DAGs that dag.test() runs against it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.helpers import load_dag, make_project
from tests.integration.scenarios import score_both_intervals


@pytest.fixture(scope="module")
def project(request, tmp_path_factory, database_url, monkeypatch_module) -> Path:
    """Config path of a trained project whose tasks write to the session's test database.

    A test module can set PROJECT_OVERRIDES = {config key: TOML value} to change its project."""
    from driftline.training import train_champion

    monkeypatch_module.setenv("DRIFTLINE_DB_URL", database_url)
    monkeypatch_module.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    overrides = {"chunk_rows": "1000", **getattr(request.module, "PROJECT_OVERRIDES", {})}
    path = make_project(tmp_path_factory.mktemp("project"), f"it_{uuid.uuid4().hex[:8]}", **overrides)
    train_champion(str(path))
    return path


@pytest.fixture(scope="module")
def score_batch_dag(airflow_db):
    """score_batch, loaded once per test module for dag.test()."""
    return load_dag("score_batch")


@pytest.fixture(scope="module")
def retrain_dag(airflow_db):
    """retrain_model, loaded once per test module for dag.test()."""
    return load_dag("retrain_model")


@pytest.fixture(scope="module")
def scored_project(project) -> Path:
    """The module project with both intervals scored by its champion (rows the retrain window uses)."""
    score_both_intervals(project)
    return project
