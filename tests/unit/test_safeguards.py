"""Unit tests of the safeguard rules, their config, the alert destinations and the scoring deadline."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from driftline.airflow.channels import AlertChannelError, build_notifiers
from driftline.config import AlertSettings, ConfigError, Safeguards, load_config
from driftline.scoring.safeguards import (
    OutputSanityError,
    ScoreStats,
    check_distribution,
    check_scores,
    score_reference,
)
from tests.helpers import DEMO_CONFIG, config_copy

REPO = Path(__file__).resolve().parents[2]
DEMO = DEMO_CONFIG.read_text()


def config_with(tmp_path: Path, replace: dict[str, str] | None = None, **safeguards):
    """The demo config with replace ({old: new}, each checked) and safeguards overridden."""
    config = load_config(config_copy(tmp_path, (replace or {}).items()))
    return dataclasses.replace(config, safeguards=dataclasses.replace(config.safeguards, **safeguards))


def test_demo_config_safeguards_and_alerts():
    config = load_config(REPO / "config" / "demo.toml")
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


def test_score_stats_merge_chunks_like_numpy():
    rng = np.random.default_rng(7)
    scores = rng.beta(2, 5, 10_001)
    stats = ScoreStats()
    for chunk in np.array_split(scores, 7):
        stats.add(chunk, (chunk >= 0.5).astype("int16"))
    assert stats.rows == len(scores)
    assert stats.mean == pytest.approx(scores.mean(), rel=1e-12)
    assert stats.std == pytest.approx(scores.std(), rel=1e-10)
    assert stats.positives == int((scores >= 0.5).sum())


def stats_of(scores) -> ScoreStats:
    stats = ScoreStats()
    scores = np.asarray(scores, dtype="float64")
    stats.add(scores, (scores >= 0.5).astype("int16"))
    return stats


def test_collapsed_std_fails_with_the_numbers(tmp_path):
    config = config_with(tmp_path)
    reference = score_reference(config, np.linspace(0, 1, 1000))
    with pytest.raises(
        OutputSanityError, match=r"score standard deviation 0.0\d+ is \d+\.\d% of the model's reference"
    ) as failure:
        check_distribution(stats_of(np.full(1000, 0.3) + np.linspace(0, 0.01, 1000)), reference, config)
    numbers = failure.value.numbers
    assert numbers["std_ratio"] < 0.25 and numbers["reference"]["std"] == pytest.approx(np.linspace(0, 1, 1000).std())
    assert check_distribution(stats_of(np.linspace(0.1, 0.9, 1000)), reference, config) == "passed"


def test_distribution_check_skips_small_intervals_and_missing_references(tmp_path):
    config = config_with(tmp_path)
    assert check_distribution(stats_of(np.full(10, 0.3)), {"std": 0.3}, config).startswith("skipped: 10 scored rows")
    assert "std rule skipped" in check_distribution(stats_of(np.full(1000, 0.3)), None, config)


def test_majority_share_is_judged_against_the_reference(tmp_path):
    config = config_with(tmp_path, min_score_std_ratio=None, max_majority_share=0.95)
    balanced = score_reference(config, np.linspace(0, 1, 1000))
    one_sided = score_reference(config, np.linspace(0, 0.4, 1000))
    all_low = stats_of(np.linspace(0.0, 0.45, 1000))
    with pytest.raises(OutputSanityError, match=r"100.00% of rows get the same predicted class"):
        check_distribution(all_low, balanced, config)
    assert "majority rule skipped" in check_distribution(all_low, one_sided, config)


def test_check_scores_rejects_nan_and_out_of_range(tmp_path):
    config = config_with(tmp_path)
    with pytest.raises(OutputSanityError, match="1 of 3 scores are NaN or infinite") as failure:
        check_scores(np.array([0.1, np.nan, 0.2]), config)
    assert failure.value.numbers == {"scores": 3, "not_finite": 1}
    with pytest.raises(OutputSanityError, match=r"1 of 2 scores outside \[0, 1\]"):
        check_scores(np.array([0.1, 1.5]), config)
    check_scores(np.array([0.0, 1.0]), config)


def test_regression_score_range_is_configurable(tmp_path):
    config = config_with(
        tmp_path,
        {'task = "binary"': 'task = "regression"', '\nmetric = "auc"': '\nmetric = "rmse"'},
        score_range=(0.0, 100.0),
        max_majority_share=None,
    )
    check_scores(np.array([0.0, 99.0]), config)
    with pytest.raises(OutputSanityError, match=r"outside \[0, 100\]"):
        check_scores(np.array([-1.0, 5.0]), config)


def test_notifier_selection_by_connection_id():
    assert build_notifiers(AlertSettings(), "subject", "body") == {}
    smtp = build_notifiers(AlertSettings(smtp_conn_id="smtp_alerts", smtp_to=("a@example.com",)), "subject", "body")
    [(name, notifier)] = smtp.items()
    assert name == "smtp:smtp_alerts" and type(notifier).__name__ == "SmtpNotifier"
    assert notifier.to == ["a@example.com"] and notifier.smtp_conn_id == "smtp_alerts" and notifier.subject == "subject"


def test_missing_provider_names_the_extra():
    settings = AlertSettings(slack_webhook_conn_id="slack_alerts")
    try:
        import airflow.providers.slack  # noqa: F401
    except ImportError:
        with pytest.raises(AlertChannelError, match=r"pip install 'driftline\[slack\]'"):
            build_notifiers(settings, "subject", "body")
    else:
        [(name, notifier)] = build_notifiers(settings, "subject", "body").items()
        assert name == "slack:slack_alerts" and type(notifier).__name__ == "SlackWebhookNotifier"


def test_scoring_deadline_is_interval_length_plus_configured_hours(tmp_path):
    from driftline.airflow.notifiers import scoring_deadline

    config = config_with(tmp_path)
    deadline = scoring_deadline(config)
    assert deadline.interval == timedelta(days=1, hours=6)
    assert deadline.callback.path == "driftline.airflow.notifiers.scoring_deadline_missed"
    assert deadline.callback.kwargs == {"config_path": str(config.path), "deadline_hours": 6.0}
    hourly = config_with(tmp_path, {'cron = "0 0 * * *"': 'cron = "0 * * * *"'})
    assert scoring_deadline(hourly).interval == timedelta(hours=7)
    off = dataclasses.replace(config, alerts=AlertSettings())
    assert scoring_deadline(off) is None
