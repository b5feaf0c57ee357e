"""The reader views (what analysts query) over the tables as they are at 0003.

Idempotent on purpose, like every revision up to 0004: they also run over deployments made
before Alembic (schema_version held a DDL digest then), whatever state those are in.

Revision ID: 0004
Revises: 0003
"""

from driftline.db.schema import execute_in_revision as execute

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        # Stable reader surface: analysts query these views, never the narrow tables.
        """CREATE OR REPLACE VIEW {s}.predictions AS
               SELECT i.interval_start, i.interval_end, p.entity_key, p.score, p.predicted_class,
                      r.model_version, r.run_id, r.finished_at AS scored_at
               FROM {s}.scored_intervals i
               JOIN {s}.prediction_rows p ON p.run_key = i.current_run_key
               JOIN {s}.scoring_runs r ON r.run_key = i.current_run_key""",
        """CREATE OR REPLACE VIEW {s}.latest_predictions AS
               SELECT DISTINCT ON (entity_key) *
               FROM {s}.predictions
               ORDER BY entity_key, interval_end DESC""",
        """CREATE OR REPLACE VIEW {s}.run_summary AS
               SELECT i.interval_start, i.interval_end, r.run_key, r.run_id, r.status, r.model_version,
                      r.rows_in, r.rows_scored, r.rows_quarantined, r.stage_seconds, r.source_uri,
                      r.message, r.started_at, r.finished_at,
                      r.run_key = i.current_run_key AS published, r.scoring_engine
               FROM {s}.scoring_runs r JOIN {s}.scored_intervals i ON i.interval_id = r.interval_id""",
        """CREATE OR REPLACE VIEW {s}.drift_summary AS
               SELECT d.interval_start, d.interval_end, d.model_version, d.features, d.drifted_features,
                      d.counted_features, d.drifted_share, d.prediction_method, d.prediction_drift, d.breach,
                      x.trigger, x.reason, x.retrain_run_id, d.rows_scored, d.current_rows, d.reference_rows,
                      d.report_path, d.run_id, d.monitored_at, d.attribution_ndcg
               FROM {s}.drift_intervals d
               LEFT JOIN LATERAL (
                   SELECT trigger, reason, retrain_run_id FROM {s}.drift_decisions c
                   WHERE c.interval_start = d.interval_start AND c.interval_end = d.interval_end
                   ORDER BY c.decision_id DESC LIMIT 1) x ON true""",
        # Run health for dashboards: one row per score_batch attempt, and one per attempt and stage.
        """CREATE OR REPLACE VIEW {s}.run_health AS
               SELECT i.interval_start, i.interval_end, r.run_key, r.run_id, r.status,
                      r.run_key IS NOT DISTINCT FROM i.current_run_key AS published,
                      r.model_version, r.requested_version, r.fallback, r.fallback_reason,
                      r.rows_in, r.rows_scored, r.rows_quarantined,
                      CASE WHEN r.status = 'failed' THEN coalesce(r.rows_in, 0) ELSE 0 END AS rows_failed,
                      extract(epoch FROM r.finished_at - r.started_at)::float8 AS duration_seconds,
                      r.rows_in / nullif(extract(epoch FROM r.finished_at - r.started_at)::float8, 0)
                          AS rows_per_second,
                      CASE WHEN r.status = 'succeeded'
                           THEN extract(epoch FROM r.finished_at - i.interval_end)::float8 END AS freshness_seconds,
                      r.score_stats, r.message, r.started_at, r.finished_at, r.partitions
               FROM {s}.scoring_runs r JOIN {s}.scored_intervals i ON i.interval_id = r.interval_id""",
        """CREATE OR REPLACE VIEW {s}.run_stage_health AS
               SELECT i.interval_start, i.interval_end, r.run_key, r.run_id, r.status, st.key AS stage,
                      st.value::float8 AS seconds, r.rows_in / nullif(st.value::float8, 0) AS rows_per_second
               FROM {s}.scoring_runs r
               JOIN {s}.scored_intervals i ON i.interval_id = r.interval_id
               CROSS JOIN LATERAL jsonb_each_text(r.stage_seconds) st""",
        """CREATE OR REPLACE VIEW {s}.prediction_reasons AS
               SELECT i.interval_start, i.interval_end, x.entity_key, p.score, x.rank, x.feature, x.value,
                      x.contribution, r.model_version, r.run_id
               FROM {s}.scored_intervals i
               JOIN {s}.prediction_reason_rows x ON x.run_key = i.current_run_key
               JOIN {s}.prediction_rows p ON p.run_key = x.run_key AND p.entity_key = x.entity_key
               JOIN {s}.scoring_runs r ON r.run_key = i.current_run_key""",
        # Published predictions whose score fell inside the run's review band ([safeguards] review_band).
        """CREATE OR REPLACE VIEW {s}.predictions_for_review AS
               SELECT i.interval_start, i.interval_end, p.entity_key, p.score, p.predicted_class,
                      r.model_version, r.run_id, r.review_low, r.review_high
               FROM {s}.scored_intervals i
               JOIN {s}.prediction_rows p ON p.run_key = i.current_run_key
               JOIN {s}.scoring_runs r ON r.run_key = i.current_run_key
               WHERE r.review_low IS NOT NULL AND p.score BETWEEN r.review_low AND r.review_high""",
        # How good the estimator has been: the estimate's error once labels arrived, and whether the band held.
        """CREATE OR REPLACE VIEW {s}.estimated_vs_realized AS
               SELECT interval_start, interval_end, model_version, metric, estimate, band_low, band_high, rows,
                      realized, realized_rows, estimate - realized AS error,
                      realized BETWEEN band_low AND band_high AS within_band,
                      realized_rows::float8 / nullif(rows, 0) AS labelled_share, threshold, labels_as_of, estimated_at
               FROM {s}.estimated_performance""",
    )


def downgrade() -> None:
    raise NotImplementedError("driftline schemas are upgraded only; restore a backup to go back")
