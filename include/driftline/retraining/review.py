"""With retraining.promotion = "manual": what the reviewer is asked about a candidate that passed
every guardrail. Their answer arrives as plain values (approved, reviewer, comment): the adapter
reads it from the approval gate (driftline.airflow.approval.review_answer)."""

from __future__ import annotations

from driftline.config import DatasetConfig, load_config
from driftline.retraining.guardrails import better_by, metric_text


def _guardrail_lines(config: DatasetConfig, validation: dict) -> list[str]:
    """Each guardrail with its threshold and the candidate's figure, for the reviewer."""
    policy, metric = config.retraining, validation["metric"]
    candidate, champion = validation["candidate"]["metrics"], (validation["champion"] or {}).get("metrics", {})
    lines = [f"training rows {validation['training_rows']} >= retraining.min_training_rows {policy.min_training_rows}"]
    if policy.min_metric is not None:
        lines.append(f"{metric} {candidate[metric]:.4f} reaches retraining.min_metric {policy.min_metric}")
    lines.append("holdout predictions finite, in range and not constant")
    if champion:
        lines.append(f"{metric} beats the champion by more than retraining.min_improvement {policy.min_improvement}")
        lines.append(
            f"no other metric and no segment worse than the champion by more than retraining.max_regression {policy.max_regression}"
        )
    return lines


def approval_request(config_path: str, validation: dict) -> dict | None:
    """With retraining.promotion = "manual", what the reviewer sees for a candidate that passed every
    guardrail: {"subject", "body"} (Markdown). None when nobody needs asking (auto mode, a failed
    guardrail, or the candidate already is the champion): decide_promotion then decides alone.

    Figures only (metrics, versions, row counts, holdout bounds): no rows, no entity keys.
    """
    config = load_config(config_path)
    if config.retraining.promotion != "manual" or not validation["passed"]:
        return None
    version, metric = validation["version"], validation["metric"]
    champion = validation["champion"]
    if champion and champion["version"] == version:
        return None
    holdout = validation["holdout"]
    rows = [
        f"| metric | candidate v{version} | "
        + (f"champion v{champion['version']} | candidate better by |" if champion else "")
    ]
    rows.append("|---|---|" + ("---|---|" if champion else ""))
    for name, value in sorted(validation["candidate"]["metrics"].items()):
        line = f"| {name}{' (primary)' if name == metric else ''} | {value:.4f} |"
        if champion and name in champion["metrics"]:
            line += f" {champion['metrics'][name]:.4f} | {better_by(name, value, champion['metrics'][name]):+.4f} |"
        rows.append(line)
    segments = validation["candidate"].get("segments") or {}
    if segments and champion:
        rows.append(
            f"\n{metric} per {config.retraining.segment} (segments with >= {config.retraining.min_segment_rows} holdout rows):\n"
        )
        rows.append("| segment | candidate | champion |")
        rows.append("|---|---|---|")
        rows.extend(
            f"| {name} | {value:.4f} | {metric_text(champion['segments'], name)} |"
            for name, value in sorted(segments.items())
        )
    body = "\n".join(
        [
            f"Candidate v{version} passed every guardrail. Promote it to champion"
            + (f" (v{champion['version']} becomes previous)?" if champion else "?"),
            "",
            f"Shared holdout: {holdout['rows']} rows, {holdout['start'][:16]} .. {holdout['end'][:16]}, chosen as "
            f"{holdout['reason']}; {validation['training_rows']} training rows. Both models are scored on it.",
            "",
            *rows,
            "",
            "Guardrails (all passed):",
            "",
            *(f"- {line}" for line in _guardrail_lines(config, validation)),
            "",
            f"**Approve** promotes v{version}; **Reject** keeps the champion. Your name and comment are recorded in "
            f"`{config.db_schema}.promotion_events` and in the model's manifest. No answer within "
            f"{config.retraining.approval_timeout_hours:g} h rejects the candidate.",
        ]
    )
    subject = f"{config.name}: promote candidate v{version}" + (
        f" over champion v{champion['version']}?" if champion else "?"
    )
    return {"subject": subject, "body": body}
