"""The allowed TOML keys come from the dataclass fields: a new field is a new key, with no second list."""

from __future__ import annotations

from dataclasses import dataclass, field

from driftline.config import DatasetConfig, DriftPolicy, Feature, RetrainingPolicy
from driftline.config.checks import REQUIRED_SECTIONS, SECTIONS, settings_keys


def test_a_field_without_default_is_required_and_metadata_can_say_otherwise():
    @dataclass(frozen=True)
    class Settings:
        needed: int
        renamed: int = field(default=1, metadata={"key": "toml_name"})
        skipped: str = field(default="", metadata={"key": None})
        optional_anyway: int = field(default=0, metadata={"required": False})

    assert settings_keys(Settings) == ({"needed"}, {"toml_name", "optional_anyway"})


def test_sections_follow_the_dataclasses():
    assert SECTIONS["drift"][0] == {"reports_dir", "trigger"}
    assert "reference_dir" in SECTIONS["drift"][1]
    assert settings_keys(DriftPolicy)[0] == {
        "drifted_share",
        "prediction_drift",
        "effect_size_floor",
        "breaches",
        "window",
        "cooldown_hours",
    }
    assert settings_keys(Feature) == ({"type"}, {"nullable", "min", "max", "categories"})
    assert SECTIONS["retraining"] == (set(), set(RetrainingPolicy.__dataclass_fields__))
    assert SECTIONS["database"] == ({"schema"}, {"url", "conn_id", "analyst_role"})
    assert SECTIONS["features"] == (set(), set())  # free-form: one sub-table per column
    assert REQUIRED_SECTIONS == {
        "dataset",
        "features",
        "source",
        "schedule",
        "database",
        "validation",
        "model",
        "drift",
    }


def test_every_dataset_field_but_path_and_root_says_where_it_comes_from():
    unmapped = [name for name, spec in DatasetConfig.__dataclass_fields__.items() if "section" not in spec.metadata]
    assert unmapped == ["path", "root"]
