"""A small project on disk (config, suite, synthetic data, trained champion) per test module."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from driftline.config import load_config
from driftline.devtools.demo_data import DemoPlan, write_demo_data
from driftline.validation import write_suite

REPO = Path(__file__).resolve().parents[2]
SMALL_PLAN = DemoPlan(history_days=10, history_rows_per_day=1_500, intervals=2, rows_per_interval=3_000)


def make_project(root: Path, schema: str, **overrides: str) -> Path:
    """Copy the demo config into root/config with its own schema (and overrides); write suite and data."""
    text = (REPO / "config" / "demo.toml").read_text()
    text = re.sub(r'^schema = ".*"$', f'schema = "{schema}"', text, flags=re.M)
    for key, value in overrides.items():
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
    (root / "config").mkdir(parents=True)
    path = root / "config" / "demo.toml"
    path.write_text(text)
    config = load_config(path)
    write_suite(config)
    write_demo_data(config, SMALL_PLAN)
    return path


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
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def config_variant(base: Path, schema: str, name: str | None = None, **overrides: str) -> Path:
    """A sibling config of base (same project root and data) with the given schema, its registry folder
    and overrides, written to config/<name or schema>.toml."""
    text = base.read_text()
    text = re.sub(r'^schema = ".*"$', f'schema = "{schema}"', text, flags=re.M)
    text = re.sub(r'^registry_dir = ".*"$', f'registry_dir = "models/{schema}"', text, flags=re.M)
    for key, value in overrides.items():
        text, count = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
        assert count == 1, f"{key} is not a single line of {base}"
    path = base.parent / f"{name or schema}.toml"
    path.write_text(text)
    return path


def fetch(config_path: Path, query: str, params=()) -> list[tuple]:
    """Rows of a query whose {s} is the config's schema, on $DRIFTLINE_DB_URL (the test database)."""
    import os

    import psycopg
    from psycopg import sql

    config = load_config(config_path)
    with psycopg.connect(os.environ["DRIFTLINE_DB_URL"]) as conn:
        return conn.execute(sql.SQL(query).format(s=sql.Identifier(config.db_schema)), params).fetchall()
