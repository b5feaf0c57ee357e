"""The allowed TOML keys come from the config models (config/file.py, config/model.py): a new field is a
new key, with no second list, and the key reference is printed from the same models."""

from __future__ import annotations

from dataclasses import fields

import pytest

from driftline.config import ConfigError, DatasetConfig, DriftPolicy, Feature, RetrainingPolicy, load_config
from driftline.config.file import ConfigFile
from driftline.config.messages import keys, table_class
from driftline.config.reference import key_reference, key_rows
from tests.helpers import config_copy


def test_keys_follow_the_models():
    assert set(keys(table_class(ConfigFile, ["drift"]))) >= {"reports_dir", "trigger", "reference_dir"}
    assert set(keys(DriftPolicy)) >= {"drifted_share", "window", "cooldown_hours"}
    assert set(keys(Feature)) == {"type", "nullable", "min", "max", "categories"}  # name is the sub-table's
    assert set(keys(RetrainingPolicy)) == {spec.name for spec in fields(RetrainingPolicy)}
    assert set(keys(table_class(ConfigFile, ["database"]))) == {"schema", "url", "conn_id", "analyst_role"}
    assert "key" not in keys(table_class(ConfigFile, ["source", "input"]))


def test_every_dataset_field_but_path_and_root_says_where_it_comes_from():
    unmapped = [spec.name for spec in fields(DatasetConfig) if "section" not in spec.metadata]
    assert unmapped == ["path", "root"]


TABLES = sorted({s for s, *_ in key_rows() if s and s.split(".")[-1] not in ("input", "labels", "history")})


@pytest.mark.parametrize("section", TABLES)
def test_every_table_of_the_reference_refuses_a_typo_and_lists_its_keys(tmp_path, section):
    """A misspelt key of each table is an unknown key naming it, and the message lists the reference's keys."""
    listed = sorted({k[len(section) + 1 :].split(".")[0] for _, k, *_ in key_rows() if k.startswith(section + ".")})
    section, key = section.replace("<column>", "amount"), listed[0]
    head = f"[{section}]"
    text = config_copy(tmp_path).read_text()
    if head not in text:
        text += f"\n{head}\n"
    path = tmp_path / "typo.toml"
    path.write_text(text.replace(head, f"{head}\n{key}_typo = 1", 1))
    with pytest.raises(ConfigError, match=f"unknown key '{section}.{key}_typo'") as raised:
        load_config(path)
    allowed = str(raised.value).split("(allowed: ")[1].rstrip(")").split(", ")
    assert sorted(allowed) == listed


def test_the_key_reference_is_a_markdown_table_from_the_models():
    table = key_reference()
    lines = table.splitlines()
    assert lines[0] == "| key | type | default | description |"
    assert "| `drift.trigger.window` | int | required |" in table
    assert "| `retraining.keep_versions` | int | `5` |" in table
    assert "`<model.registry_dir>/reference`" in table
    assert len(lines) > 80
    assert "| `features` |" not in table  # one table per column, listed as features.<column>.*, not a str
