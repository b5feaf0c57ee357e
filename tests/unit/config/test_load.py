from __future__ import annotations

import re
from pathlib import Path

import pytest

from driftline.config import ConfigError, load_config
from tests.helpers import DEMO_CONFIG, config_copy, write_config

REPO = Path(__file__).resolve().parents[3]
DEMO = DEMO_CONFIG.read_text()


def test_demo_config_loads_typed():
    config = load_config(REPO / "config" / "demo.toml")
    assert config.name == "demo_transactions"
    assert config.entity_key == "transaction_id"
    assert config.numeric_features[:2] == ["amount", "account_age_days"]
    assert config.categorical_features == ["merchant_category", "channel"]
    assert config.root == REPO
    assert config.quarantine_budget == 0.05
    amount = config.features[0]
    assert (amount.min, amount.max, amount.nullable) == (0, 50000, False)


def test_scoring_engine_defaults_to_compiled(tmp_path):
    assert load_config(REPO / "config" / "demo.toml").scoring_engine == "lightgbm"  # small demo intervals
    config = load_config(config_copy(tmp_path, [('engine = "lightgbm"\n', "")]))
    assert config.scoring_engine == "compiled"


def test_input_location_renders_the_interval(tmp_path):
    from datetime import datetime, timezone

    config = load_config(config_copy(tmp_path))
    start = datetime(2026, 11, 5, tzinfo=timezone.utc)
    location = config.input_location(start, start)
    assert location == str(tmp_path / "data/demo_transactions/input/2026-11-05.csv")


@pytest.mark.parametrize(
    "edits, message",
    [
        ([('target = "is_fraud"', 'target = "is_fraud"\ntargte = "x"')], "unknown key 'dataset.targte'"),
        ([('entity_key = "transaction_id"\n', "")], "missing required key 'dataset.entity_key'"),
        ([("[scoring]", "[scoring_options]")], "unknown section '[scoring_options]'"),
        (
            [('[features.merchant_category]\ntype = "categorical"', '[features.merchant_category]\ntype = "text"')],
            "'features.merchant_category.type'",
        ),
        ([("quarantine_budget = 0.05", "quarantine_budget = 5")], "quarantine_budget"),
        ([('schema = "driftline_demo"', 'schema = "drift; drop"')], "database.schema"),
        ([('event_time = "event_time"', 'event_time = "amount"')], "used twice"),
        (
            [("nullable = false\nmin = 0\nmax = 50000", "nullable = false\nminimum = 0")],
            "unknown key 'features.amount.minimum'",
        ),
        ([("threshold = 0.5", "threshold = true")], "'model.threshold'"),
        ([('cron = "0 0 * * *"', 'cron = "@daily"')], "schedule.cron"),
        ([("keep_versions = 5", "keep_version = 5")], "unknown key 'retraining.keep_version'"),
        ([('engine = "lightgbm"', 'engine = "gpu"')], "'scoring.engine' must be one of"),
        ([('engine = "lightgbm"', "engine = 1")], "'scoring.engine' must be one of"),
        ([('engine = "lightgbm"', 'engines = "lightgbm"')], "unknown key 'scoring.engines'"),
        ([("keep_versions = 5", "keep_versions = 1")], "'retraining.keep_versions' must be at least 2"),
        ([('\nmetric = "auc"', '\nmetric = "rmse"')], "'retraining.metric'"),
        ([('segment = "merchant_category"', 'segment = "amount"')], "'retraining.segment'"),
        ([("shadow = false", 'shadow = "no"')], "'retraining.shadow'"),
        ([("min_training_rows = 1000", "min_training_rows = 0")], "'retraining.min_training_rows'"),
        ([('promotion = "auto"', 'promotion = "ask"')], "'retraining.promotion'"),
        ([("approval_timeout_hours = 72", "approval_timeout_hours = 0")], "'retraining.approval_timeout_hours'"),
        (
            [('schema = "driftline_demo"', 'schema = "driftline_demo"\nanalyst_role = "Analysts; DROP"')],
            "'database.analyst_role'",
        ),
    ],
)
def test_bad_config_names_key_and_file(tmp_path, edits, message):
    path = config_copy(tmp_path, edits)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_retraining_section_is_optional_with_defaults(tmp_path):
    config = load_config(config_copy(tmp_path, sections={"retraining": None}))
    assert (config.retraining.metric, config.retraining.keep_versions, config.retraining.shadow) == ("auc", 5, False)
    assert config.retraining.segment is None and config.retraining.min_metric is None
    demo = load_config(REPO / "config" / "demo.toml").retraining
    assert (demo.segment, demo.min_metric) == ("merchant_category", 0.6)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write_config(tmp_path, "[dataset\nname="))


def test_package_code_names_no_dataset_column():
    """Dataset specifics live in config: the scoring path never names a demo column."""
    # (The demo's event-time column shares its name with the config key `event_time`, so it is not listed.)
    columns = re.findall(r"^\[features\.(\w+)\]", DEMO, flags=re.M) + ["transaction_id", "is_fraud"]
    assert len(columns) == 9
    package = REPO / "include" / "driftline"
    for module in package.glob("*.py"):
        if module.name == "demo.py":  # the synthetic demo dataset itself
            continue
        text = module.read_text()
        found = [c for c in columns if re.search(rf"\b{c}\b", text)]
        assert found == [], f"{module.name} names dataset columns {found}"


def test_database_url_with_a_password_is_refused_without_echoing_it(tmp_path):
    path = config_copy(
        tmp_path,
        [('schema = "driftline_demo"', 'schema = "driftline_demo"\nurl = "postgresql://app:hunter2-secret@db/x"')],
    )
    with pytest.raises(ConfigError, match="'database.url' contains a password") as raised:
        load_config(path)
    assert "hunter2-secret" not in str(raised.value)
    # A URL that only names the server is fine (the password comes from the environment or a .pgpass).
    path = config_copy(
        tmp_path, [('schema = "driftline_demo"', 'schema = "driftline_demo"\nurl = "postgresql://app@db/x"')]
    )
    assert load_config(path).db_url == "postgresql://app@db/x"


def test_promotion_mode_and_analyst_role(tmp_path):
    config = load_config(REPO / "config" / "demo.toml")
    assert (config.retraining.promotion, config.retraining.approval_timeout_hours) == ("auto", 72.0)
    assert config.analyst_role is None  # creating a role needs CREATEROLE: opt in
    config = load_config(
        config_copy(
            tmp_path, [("# analyst_role = ", "analyst_role = "), ('promotion = "auto"', 'promotion = "manual"')]
        )
    )
    assert (config.analyst_role, config.retraining.promotion) == ("driftline_analyst", "manual")


def test_no_credential_in_committed_files():
    """Config files, compose, the example env and the workflow hold no password: only ${VAR} references."""
    import subprocess

    from driftline.secrets import has_password

    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    assert ".env" not in files
    for name in files:
        if not name.endswith((".toml", ".yml", ".yaml", ".example", ".sql", ".cfg", ".ini", ".json", "Dockerfile")):
            continue
        for line in (REPO / name).read_text(errors="replace").splitlines():
            for url in re.findall(r"postgres(?:ql)?(?:\+\w+)?://\S+", line):
                # Only environment references (${VAR}) may stand where a password goes.
                assert not has_password(re.sub(r"\$\{[^}]+\}", "", url)), f"{name}: {line.strip()}"


@pytest.mark.parametrize("character", ['"', ",", ":", "[", "]", "{", "}", "\n"])
def test_feature_names_lightgbm_refuses_are_refused_at_load_naming_key_and_file(tmp_path, character):
    name = f"amount{character}usd"
    toml_name = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    path = config_copy(tmp_path, [("[features.amount]", f'[features."{toml_name}"]')])
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message and repr(name) in message and "LightGBM cannot store it" in message


def test_lightgbm_really_refuses_what_the_config_refuses():
    """The refused set is LightGBM's own check, not a guess: each character fails its training."""
    import lightgbm as lgb
    import numpy as np
    import pandas as pd

    from driftline.config.checks import LIGHTGBM_REFUSED as _LIGHTGBM_REFUSED

    rng = np.random.default_rng(0)
    for character in sorted(_LIGHTGBM_REFUSED):
        frame = pd.DataFrame({f"a{character}b": rng.normal(size=100), "other": rng.normal(size=100)})
        with pytest.raises(lgb.basic.LightGBMError, match="special JSON characters"):
            lgb.train({"verbose": -1, "objective": "binary"}, lgb.Dataset(frame, (frame["other"] > 0).astype(int)), 1)


def test_non_ascii_feature_names_load_and_survive_into_the_suite(tmp_path):
    from driftline.validation import write_suite

    config = load_config(
        config_copy(
            tmp_path, [("[features.amount]", '[features."montant_é"]'), ("[features.channel]", '[features."канал"]')]
        )
    )
    assert config.feature_names[0] == "montant_é" and "канал" in config.categorical_features
    suite_text = write_suite(config).read_text(encoding="utf-8")
    assert '"column": "montant_é"' in suite_text and '"канал"' in suite_text and "\\u" not in suite_text


def test_positive_label_and_label_column_load_and_are_checked(tmp_path):
    config = load_config(
        config_copy(
            tmp_path,
            [
                ('target = "is_fraud"', 'target = "is_fraud"\npositive_label = "Yes"'),
                (
                    'history = "data/demo_transactions/history.parquet"',
                    'history = "data/demo_transactions/history.parquet"\nlabel_column = "fraud_confirmed"',
                ),
            ],
        )
    )
    assert (config.positive_label, config.label_column, config.labels_target_column) == (
        "Yes",
        "fraud_confirmed",
        "fraud_confirmed",
    )
    plain = load_config(REPO / "config" / "demo.toml")
    assert (plain.positive_label, plain.labels_target_column) == (None, "is_fraud")  # default: the target's name

    for edits, message in [
        (
            [
                ('task = "binary"', 'task = "regression"'),
                ('target = "is_fraud"', 'target = "is_fraud"\npositive_label = "Yes"'),
            ],
            "'dataset.positive_label' applies to binary targets",
        ),
        ([('target = "is_fraud"', 'target = "is_fraud"\npositive_label = ""')], "'dataset.positive_label'"),
        ([('target = "is_fraud"', 'target = "is_fraud"\npositive_label = true')], "'dataset.positive_label'"),
        ([('history = "data', 'label_column = "transaction_id"\nhistory = "data')], "'source.label_column'"),
        ([('history = "data', 'label_column = 3\nhistory = "data')], "'source.label_column'"),
    ]:
        path = config_copy(tmp_path, edits)
        with pytest.raises(ConfigError, match=re.escape(message)) as error:
            load_config(path)
        assert str(path) in str(error.value)


def _with_source_keys(keys: str) -> list[tuple[str, str]]:
    return [("[source]\n", "[source]\n" + keys + "\n")]


def test_source_reading_options_default_and_parse(tmp_path):
    config = load_config(config_copy(tmp_path))
    assert (config.source.encoding, config.source.null_values, config.source.max_record_bytes) == ("utf-8", (), 1 << 20)
    config = load_config(
        config_copy(
            tmp_path, _with_source_keys('encoding = "Latin-1"\nnull_values = ["NA", "null"]\nmax_record_bytes = 4096')
        )
    )
    assert (config.source.encoding, config.source.null_values, config.source.max_record_bytes) == (
        "iso8859-1",
        ("NA", "null"),
        4096,
    )


@pytest.mark.parametrize(
    "keys, message",
    [
        ('encoding = "utf-16"', "not ASCII-compatible"),
        ('encoding = "klingon"', "names no known encoding"),
        ('null_values = "NA"', "'source.null_values' must be list"),
        ('null_values = ["NA", ""]', "non-empty strings"),
        ("max_record_bytes = 10", "at least 64"),
        ('encodng = "utf-8"', "unknown key 'source.encodng'"),
    ],
)
def test_source_reading_options_are_checked(tmp_path, keys, message):
    with pytest.raises(ConfigError) as error:
        load_config(config_copy(tmp_path, _with_source_keys(keys)))
    assert message in str(error.value)
