"""[handoff] (config/handoff.py): what import-model trusts, checked at config load, naming the key."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('pickle_sha256 = ["abc"]', "'handoff.pickle_sha256' entries are .*64 characters"),
        ("parity_tolerance = 1.5", r"'handoff.parity_tolerance' must be in \[0, 1\)"),
        ("parity_tolerance = true", "'handoff.parity_tolerance' must be a number"),
        ('trusted_types = ["not a type"]', "'handoff.trusted_types' entries are full type names"),
        ('trusted_types = "a.B"', "'handoff.trusted_types' must be list"),
        ('mlflow_alias = "bad alias"', "'handoff.mlflow_alias' must be an MLflow alias name"),
        (
            "mlflow_register_as = \"fraud' or name = 'other\"",
            "'handoff.mlflow_register_as' must be an MLflow registered",
        ),
        ("parity_min_rows = 0", "'handoff.parity_min_rows'"),
        ("unknown = 1", "unknown key 'handoff.unknown'"),
    ],
)
def test_bad_handoff_settings_are_config_errors_naming_the_key(tmp_path, body, says):
    from driftline.config import ConfigError, load_config
    from tests.helpers import config_copy

    path = config_copy(tmp_path, append=f"\n[handoff]\n{body}\n")
    with pytest.raises(ConfigError, match=says) as refused:
        load_config(path)
    assert str(refused.value).startswith(f"{path}: ")  # the file, then the key


def test_handoff_settings_default_to_refusing_pickles_and_a_tight_tolerance(tmp_path):
    from driftline.config import load_config
    from tests.helpers import config_copy

    settings = load_config(config_copy(tmp_path)).handoff
    assert settings.pickle_sha256 == () and settings.trusted_types == () and settings.parity_tolerance == 1e-6
    assert settings.parity_min_rows == 100
