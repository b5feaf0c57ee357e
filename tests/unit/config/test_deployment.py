"""The datasets of a deployment (driftline.config.load_datasets): which configs, in which order, and
which ones are broken, without Airflow."""

from __future__ import annotations

import pytest

from driftline.config import ConfigError, load_datasets
from tests.helpers import config_copy, edit_config, write_config


def dataset(root, called: str, /, **keys: str):
    """config/<called>.toml: a copy of the demo config named `called`, with its own schema, registry
    and reports folder (keys: {key: TOML value} override any of them)."""
    own = {"name": f'"{called}"', "schema": f'"dl_{called}"', "registry_dir": f'"models/{called}"'}
    return config_copy(root, name=f"{called}.toml", keys={**own, "reports_dir": f'"reports/{called}"', **keys})


@pytest.fixture
def configs(tmp_path, monkeypatch):
    monkeypatch.delenv("DRIFTLINE_CONFIG", raising=False)
    monkeypatch.setenv("DRIFTLINE_CONFIGS", str(tmp_path / "config"))
    return tmp_path


def test_every_toml_of_the_folder_is_a_dataset_in_file_name_order(configs):
    for name in ("loans", "cards"):
        dataset(configs, name)
    (configs / "config" / "notes.txt").write_text("not a config")
    datasets = load_datasets()
    assert datasets.names() == ["cards", "loans"] and datasets.broken == []
    path, config = datasets.get("loans")
    assert path == str((configs / "config" / "loans.toml").resolve()) and config.db_schema == "dl_loans"
    assert datasets.get("nope") is None


def test_driftline_config_alone_wins_over_the_folder(configs, monkeypatch):
    dataset(configs, "cards")
    single = dataset(configs, "loans")
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(single))
    assert load_datasets().names() == ["loans"]


def test_a_broken_config_is_reported_and_the_others_load(configs):
    dataset(configs, "cards")
    bad = dataset(configs, "loans")
    write_config(configs, edit_config(bad.read_text(), keys={"cron": '"daily"'}), name=bad.name)
    datasets = load_datasets()
    assert datasets.names() == ["cards"]
    [(path, error)] = datasets.broken
    assert path == str(bad.resolve()) and isinstance(error, ConfigError)
    assert str(error).startswith(f"{bad.resolve()}: 'schedule.cron'")


@pytest.mark.parametrize(
    "key, value, shared",
    [
        ("name", '"cards"', "'dataset.name' = 'cards'"),
        ("schema", '"dl_cards"', "'database.schema' = 'dl_cards'"),
        ("registry_dir", '"models/cards"', "'model.registry_dir'"),
        ("reports_dir", '"reports/cards"', "'drift.reports_dir'"),
    ],
)
def test_what_a_dataset_owns_is_not_shared_the_first_file_keeps_it(configs, key, value, shared):
    first = dataset(configs, "cards")
    second = dataset(configs, "loans", **{key: value})
    datasets = load_datasets()
    assert [config.name for _, config in datasets.loaded] == ["cards"]
    [(path, error)] = datasets.broken
    assert path == str(second.resolve())
    assert shared in str(error) and f"already used by {first.resolve()}" in str(error)


def test_a_missing_or_empty_folder_is_one_error(configs):
    [(_, error)] = load_datasets().broken
    assert "configs folder not found" in str(error)
    (configs / "config").mkdir()
    datasets = load_datasets()
    assert datasets.loaded == [] and "no dataset config (*.toml)" in str(datasets.broken[0][1])
