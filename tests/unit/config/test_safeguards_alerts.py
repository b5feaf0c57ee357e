"""[safeguards] and [alerts] in a dataset config: the demo's values, and bad values as config errors
naming the key (the rules themselves: tests/unit/scoring/test_safeguards.py)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from driftline.config import AlertSettings, ConfigError, Safeguards, load_config
from tests.helpers import DEMO_CONFIG, config_copy

DEMO = DEMO_CONFIG.read_text()


def config_with(tmp_path: Path, replace: dict[str, str] | None = None, **safeguards):
    """The demo config with replace ({old: new}, each checked) and safeguards overridden."""
    config = load_config(config_copy(tmp_path, (replace or {}).items()))
    return dataclasses.replace(config, safeguards=dataclasses.replace(config.safeguards, **safeguards))


def test_demo_config_safeguards_and_alerts():
    config = load_config(DEMO_CONFIG)
    assert config.safeguards == Safeguards(
        fallback=True,
        min_score_std_ratio=0.25,
        max_majority_share=0.999,
        min_rows_for_distribution_check=500,
        review_band=(0.4, 0.6),
    )
    assert config.alerts == AlertSettings(scoring_deadline_hours=6.0)
    assert config.alerts.channels == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("review_band = [0.6, 0.4]", "'safeguards.review_band' low must not exceed high"),
        ("review_band = [0.4]", "'safeguards.review_band' must be [low, high] numbers"),
        ("min_score_std_ratio = 1.5", "'safeguards.min_score_std_ratio' must be a fraction in [0, 1]"),
        ("fallback = 1", "'safeguards.fallback' must be bool"),
        ("score_range = [0, 1]", "'safeguards.score_range' applies to regression"),
        ("colour = 1", "unknown key 'safeguards.colour'"),
    ],
)
def test_bad_safeguards_are_config_errors(tmp_path, line, message):
    key = line.split(" =")[0]
    existing = re.search(rf"^{key} = .*$", DEMO, flags=re.M)
    replace = {existing.group(0): line} if existing else {"[safeguards]\n": f"[safeguards]\n{line}\n"}
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_with(tmp_path, replace)


def test_smtp_without_recipients_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="'alerts.smtp_to' lists no recipient"):
        config_with(tmp_path, {"[alerts]\n": '[alerts]\nsmtp_conn_id = "smtp_default"\n'})
