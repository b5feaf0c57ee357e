"""Columns added to the tables since they were first created; the partitions staging table dropped.

Idempotent on purpose, like every revision up to 0004: they also run over deployments made
before Alembic (schema_version held a DDL digest then), whatever state those are in.

Revision ID: 0003
Revises: 0002
"""

from driftline.db.schema import execute_in_revision as execute

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        # Which engine produced the scores ([scoring] engine, or lightgbm after a compile fallback).
        "ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS scoring_engine text",
        # Who changed the champion (a person for rollbacks and approvals, the DAG for automatic promotions).
        "ALTER TABLE {s}.promotion_events ADD COLUMN IF NOT EXISTS actor text",
        # promotion = "manual": the person who approved or rejected in the Airflow UI, and their comment.
        "ALTER TABLE {s}.promotion_events ADD COLUMN IF NOT EXISTS reviewer text",
        "ALTER TABLE {s}.promotion_events ADD COLUMN IF NOT EXISTS review_comment text",
        # Retention removes old artifacts from disk but keeps the row: history and predictions name it.
        "ALTER TABLE {s}.model_versions ADD COLUMN IF NOT EXISTS pruned_at timestamptz",
        # The candidate-vs-champion evaluation on the shared holdout, with the guardrail verdicts.
        "ALTER TABLE {s}.model_versions ADD COLUMN IF NOT EXISTS validation jsonb",
        # The scoring hash: sha256 over the manifest fields scoring depends on, verified at every load.
        "ALTER TABLE {s}.model_versions ADD COLUMN IF NOT EXISTS scoring_sha256 text",
        # The evaluation a promote / reject was decided on (none for rollbacks and `driftline train`).
        "ALTER TABLE {s}.promotion_events ADD COLUMN IF NOT EXISTS evaluation_id bigint REFERENCES {s}.model_evaluations",
        # Attribution drift (explain.py): nDCG of the interval's mean-|TreeSHAP| feature order against
        # the reference's (SageMaker Clarify flags < 0.9), and both importances per feature.
        "ALTER TABLE {s}.drift_intervals ADD COLUMN IF NOT EXISTS attribution_ndcg double precision",
        "ALTER TABLE {s}.drift_intervals ADD COLUMN IF NOT EXISTS attribution jsonb",
        # Safeguards: which model scored and why (fallback), the score distribution, the review band.
        "ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS requested_version integer",
        "ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS fallback boolean NOT NULL DEFAULT false",
        "ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS fallback_reason text",
        "ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS score_stats jsonb",
        "ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS review_low double precision",
        "ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS review_high double precision",
        # Partitioned scoring: the partition and file a quarantined row came from, and an attempt's partitions.
        "ALTER TABLE {s}.quarantine_rows ADD COLUMN IF NOT EXISTS partition integer",
        "ALTER TABLE {s}.quarantine_rows ADD COLUMN IF NOT EXISTS source_file text",
        "CREATE INDEX IF NOT EXISTS quarantine_rows_run ON {s}.quarantine_rows (run_key, partition)",
        "ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS partitions integer",
        # Partitions stage straight into prediction_rows now (earlier schema versions copied from here).
        "DROP TABLE IF EXISTS {s}.partition_prediction_rows",
    )


def downgrade() -> None:
    raise NotImplementedError("driftline schemas are upgraded only; restore a backup to go back")
