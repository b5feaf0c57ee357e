"""The schema code before Alembic (git show 1947211:include/driftline/db/__init__.py), kept to build
a pre-Alembic deployment in tests/integration/test_migrations.py. Test data: do not import elsewhere.
Over 400 lines on purpose: the old DDL verbatim, which the migrations must reproduce."""

from __future__ import annotations

import hashlib

import psycopg
from psycopg import sql


def table(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def _ddl(schema: str) -> list[sql.Composed]:
    s = sql.Identifier(schema)

    def q(text: str) -> sql.Composed:
        return sql.SQL(text).format(s=s)

    return [
        q("CREATE SCHEMA IF NOT EXISTS {s}"),
        # One row per data interval; current_run_key points at the attempt whose predictions are published.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.scored_intervals (
                interval_id     serial PRIMARY KEY,
                interval_start  timestamptz NOT NULL,
                interval_end    timestamptz NOT NULL,
                current_run_key bigint,
                UNIQUE (interval_start, interval_end),
                CHECK (interval_end > interval_start))"""
        ),
        # One row per attempt, failed ones included: the run summary.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.scoring_runs (
                run_key          bigserial PRIMARY KEY,
                interval_id      integer NOT NULL REFERENCES {s}.scored_intervals,
                run_id           text NOT NULL,
                model_version    integer,
                status           text NOT NULL CHECK (status IN ('succeeded', 'failed')),
                rows_in          bigint,
                rows_scored      bigint,
                rows_quarantined bigint,
                stage_seconds    jsonb NOT NULL DEFAULT '{{}}',
                source_uri       text,
                message          text,
                started_at       timestamptz NOT NULL,
                finished_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
                CHECK (status <> 'succeeded' OR rows_in = rows_scored + rows_quarantined))"""
        ),
        q("CREATE INDEX IF NOT EXISTS scoring_runs_interval ON {s}.scoring_runs (interval_id, run_key)"),
        # Which engine produced the scores ([scoring] engine, or lightgbm after a compile fallback).
        q("ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS scoring_engine text"),
        # Narrow on purpose: per-interval constants (bounds, model version, run id) live in the two
        # tables above and are joined by the predictions view. No FK: it would cost a trigger per row.
        # Rows belong to the attempt that wrote them (run_key); the interval shows the rows of its
        # current_run_key. Replacing an interval writes the new attempt's rows under a new, higher
        # run_key (they append at the right edge of the index), then deletes the previous attempt's
        # rows and moves current_run_key, in one transaction. Keyed by interval instead, a rerun's
        # rows collided in the unique index with the dead rows of the attempt it replaced: measured,
        # a rerun of 1M rows took 10.5 s against 5.4 s for a first write.
        # partition: NULL for rows scored by one score_interval task; the partition number for rows
        # a score_partition task wrote under its plan's run_key (publishing the plan only moves
        # current_run_key; a retried partition replaces its own rows). NULLs cost nothing here:
        # the row has a null bitmap already.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.prediction_rows (
                run_key         bigint NOT NULL,
                entity_key      text,
                score           double precision NOT NULL,
                predicted_class smallint,
                partition       integer)"""
        ),
        # Earlier schema versions keyed the rows by interval_id: key them by the interval's current
        # attempt instead (once; the views that read the old column are dropped with it and created
        # again below).
        sql.SQL(
            """DO $driftline_migrate$ BEGIN
                IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(format('%I.prediction_rows', {name}))
                           AND attname = 'interval_id' AND NOT attisdropped) THEN
                    ALTER TABLE {s}.prediction_rows ADD COLUMN IF NOT EXISTS run_key bigint;
                    UPDATE {s}.prediction_rows p SET run_key = i.current_run_key
                        FROM {s}.scored_intervals i WHERE i.interval_id = p.interval_id;
                    DELETE FROM {s}.prediction_rows WHERE run_key IS NULL;
                    ALTER TABLE {s}.prediction_rows ALTER COLUMN run_key SET NOT NULL, DROP COLUMN interval_id CASCADE;
                END IF;
            END $driftline_migrate$"""
        ).format(s=s, name=sql.Literal(schema)),
        # One B-tree: unique per attempt and entity, so a duplicate key that slipped past the
        # per-chunk check (far apart in a file) fails the interval loudly instead of doubling it.
        # Reads of an interval and the delete of a replaced attempt use it too. Lookups of one entity
        # across all intervals do not: add an index on entity_key if analysts need them (2-4 server
        # CPU-s more per 1M rows written; docs/performance.md).
        q("ALTER TABLE {s}.prediction_rows ADD COLUMN IF NOT EXISTS partition integer"),
        q("CREATE UNIQUE INDEX IF NOT EXISTS prediction_rows_run_entity ON {s}.prediction_rows (run_key, entity_key)"),
        # Superseded (earlier schema versions).
        q("DROP INDEX IF EXISTS {s}.prediction_rows_interval_key"),
        q("DROP INDEX IF EXISTS {s}.prediction_rows_entity_interval"),
        q("DROP INDEX IF EXISTS {s}.prediction_rows_interval_brin"),
        q("DROP INDEX IF EXISTS {s}.prediction_rows_interval"),
        q("DROP INDEX IF EXISTS {s}.prediction_rows_interval_entity"),
        q("DROP INDEX IF EXISTS {s}.prediction_rows_entity"),
        q(
            """CREATE TABLE IF NOT EXISTS {s}.quarantine_rows (
                interval_id  integer NOT NULL,
                run_key      bigint NOT NULL,
                row_number   bigint NOT NULL,
                entity_key   text,
                reason_codes text[] NOT NULL,
                raw_row      jsonb NOT NULL)"""
        ),
        q("CREATE INDEX IF NOT EXISTS quarantine_rows_interval ON {s}.quarantine_rows (interval_id)"),
        # Model registry: the shape the retrain/promote/rollback lifecycle builds on.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.model_versions (
                version      integer PRIMARY KEY,
                created_at   timestamptz NOT NULL DEFAULT now(),
                artifact_uri text NOT NULL,
                sha256       text NOT NULL UNIQUE,
                manifest     jsonb NOT NULL,
                metrics      jsonb NOT NULL,
                status       text NOT NULL CHECK (status IN ('candidate', 'champion', 'archived', 'rejected')))"""
        ),
        q(
            """CREATE TABLE IF NOT EXISTS {s}.model_aliases (
                alias      text PRIMARY KEY,
                version    integer NOT NULL REFERENCES {s}.model_versions,
                updated_at timestamptz NOT NULL DEFAULT now())"""
        ),
        q(
            """CREATE TABLE IF NOT EXISTS {s}.promotion_events (
                event_id     bigserial PRIMARY KEY,
                from_version integer REFERENCES {s}.model_versions,
                to_version   integer NOT NULL REFERENCES {s}.model_versions,
                action       text NOT NULL CHECK (action IN ('promote', 'reject', 'rollback')),
                reason       text NOT NULL,
                run_id       text,
                created_at   timestamptz NOT NULL DEFAULT now())"""
        ),
        # retrain_model
        # Who changed the champion (a person for rollbacks and approvals, the DAG for automatic promotions).
        q("ALTER TABLE {s}.promotion_events ADD COLUMN IF NOT EXISTS actor text"),
        # promotion = "manual": the person who approved or rejected in the Airflow UI, and their comment.
        q("ALTER TABLE {s}.promotion_events ADD COLUMN IF NOT EXISTS reviewer text"),
        q("ALTER TABLE {s}.promotion_events ADD COLUMN IF NOT EXISTS review_comment text"),
        # Retention removes old artifacts from disk but keeps the row: history and predictions name it.
        q("ALTER TABLE {s}.model_versions ADD COLUMN IF NOT EXISTS pruned_at timestamptz"),
        # The candidate-vs-champion evaluation on the shared holdout, with the guardrail verdicts.
        q("ALTER TABLE {s}.model_versions ADD COLUMN IF NOT EXISTS validation jsonb"),
        q("CREATE INDEX IF NOT EXISTS promotion_events_created ON {s}.promotion_events (created_at, event_id)"),
        # The scoring hash: sha256 over the manifest fields scoring depends on, verified at every load.
        q("ALTER TABLE {s}.model_versions ADD COLUMN IF NOT EXISTS scoring_sha256 text"),
        # Every candidate-vs-champion evaluation, one row each, never updated (model_versions.validation
        # above is no longer written: a second validation overwrote the first's verdict).
        q(
            """CREATE TABLE IF NOT EXISTS {s}.model_evaluations (
                evaluation_id     bigserial PRIMARY KEY,
                candidate_version integer NOT NULL REFERENCES {s}.model_versions,
                champion_version  integer REFERENCES {s}.model_versions,
                holdout_start     timestamptz,
                holdout_end       timestamptz,
                holdout_rows      integer NOT NULL,
                holdout_reason    text NOT NULL,
                passed            boolean NOT NULL,
                failures          jsonb NOT NULL,
                result            jsonb NOT NULL,
                run_id            text,
                evaluated_at      timestamptz NOT NULL DEFAULT now())"""
        ),
        q(
            "CREATE INDEX IF NOT EXISTS model_evaluations_candidate ON {s}.model_evaluations (candidate_version, evaluation_id)"
        ),
        # The evaluation a promote / reject was decided on (none for rollbacks and `driftline train`).
        q(
            "ALTER TABLE {s}.promotion_events ADD COLUMN IF NOT EXISTS evaluation_id bigint REFERENCES {s}.model_evaluations"
        ),
        # One row per scored interval; recomputed (replaced) whenever more labels have arrived.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.realized_performance (
                interval_start  timestamptz NOT NULL,
                interval_end    timestamptz NOT NULL,
                model_version   integer,
                run_id          text,
                rows_predicted  bigint NOT NULL,
                rows_labelled   bigint NOT NULL,
                metrics         jsonb NOT NULL,
                labels_as_of    timestamptz NOT NULL,
                computed_at     timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (interval_start, interval_end))"""
        ),
        # Shadow scores of a not-promoted candidate, beside the champion's published predictions.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.shadow_predictions (
                interval_start  timestamptz NOT NULL,
                interval_end    timestamptz NOT NULL,
                model_version   integer NOT NULL,
                entity_key      text,
                score           double precision NOT NULL,
                predicted_class smallint,
                run_id          text NOT NULL,
                scored_at       timestamptz NOT NULL DEFAULT now())"""
        ),
        q(
            "CREATE INDEX IF NOT EXISTS shadow_predictions_interval ON {s}.shadow_predictions (interval_start, interval_end)"
        ),
        # Stable reader surface: analysts query these views, never the narrow tables.
        q(
            """CREATE OR REPLACE VIEW {s}.predictions AS
               SELECT i.interval_start, i.interval_end, p.entity_key, p.score, p.predicted_class,
                      r.model_version, r.run_id, r.finished_at AS scored_at
               FROM {s}.scored_intervals i
               JOIN {s}.prediction_rows p ON p.run_key = i.current_run_key
               JOIN {s}.scoring_runs r ON r.run_key = i.current_run_key"""
        ),
        q(
            """CREATE OR REPLACE VIEW {s}.latest_predictions AS
               SELECT DISTINCT ON (entity_key) *
               FROM {s}.predictions
               ORDER BY entity_key, interval_end DESC"""
        ),
        q(
            """CREATE OR REPLACE VIEW {s}.run_summary AS
               SELECT i.interval_start, i.interval_end, r.run_key, r.run_id, r.status, r.model_version,
                      r.rows_in, r.rows_scored, r.rows_quarantined, r.stage_seconds, r.source_uri,
                      r.message, r.started_at, r.finished_at,
                      r.run_key = i.current_run_key AS published, r.scoring_engine
               FROM {s}.scoring_runs r JOIN {s}.scored_intervals i ON i.interval_id = r.interval_id"""
        ),
        # monitor_drift
        # One reference sample (training features + the model's own scores) per model version.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.drift_references (
                model_version integer PRIMARY KEY,
                path          text NOT NULL,
                rows          bigint NOT NULL,
                sha256        text NOT NULL,
                created_at    timestamptz NOT NULL DEFAULT now())"""
        ),
        # Per-interval summary and per-feature results; a rerun of the interval replaces both.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.drift_intervals (
                interval_start     timestamptz NOT NULL,
                interval_end       timestamptz NOT NULL,
                model_version      integer NOT NULL,
                run_id             text NOT NULL,
                rows_scored        bigint NOT NULL,
                current_rows       bigint NOT NULL,
                reference_rows     bigint NOT NULL,
                features           integer NOT NULL,
                drifted_features   integer NOT NULL,
                counted_features   integer NOT NULL,
                drifted_share      double precision NOT NULL,
                prediction_method  text NOT NULL,
                prediction_drift   double precision NOT NULL,
                breach             boolean NOT NULL,
                report_path        text NOT NULL,
                stage_seconds      jsonb NOT NULL DEFAULT '{{}}',
                monitored_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
                PRIMARY KEY (interval_start, interval_end))"""
        ),
        q(
            """CREATE TABLE IF NOT EXISTS {s}.drift_features (
                interval_start    timestamptz NOT NULL,
                interval_end      timestamptz NOT NULL,
                model_version     integer NOT NULL,
                column_name       text NOT NULL,
                column_type       text NOT NULL,
                method            text NOT NULL,
                statistic         double precision,
                threshold         double precision,
                drifted           boolean NOT NULL,
                effect_size       double precision,
                counted           boolean NOT NULL,
                PRIMARY KEY (interval_start, interval_end, column_name))"""
        ),
        # Every trigger decision, kept as a log (a rerun adds a decision, it does not erase one).
        q(
            """CREATE TABLE IF NOT EXISTS {s}.drift_decisions (
                decision_id     bigserial PRIMARY KEY,
                interval_start  timestamptz NOT NULL,
                interval_end    timestamptz NOT NULL,
                run_id          text NOT NULL,
                breach          boolean NOT NULL,
                trigger         boolean NOT NULL,
                reason          text NOT NULL,
                numbers         jsonb NOT NULL,
                retrain_run_id  text,
                decided_at      timestamptz NOT NULL DEFAULT clock_timestamp())"""
        ),
        q("CREATE INDEX IF NOT EXISTS drift_decisions_interval ON {s}.drift_decisions (interval_end, decision_id)"),
        # Attribution drift (explain.py): nDCG of the interval's mean-|TreeSHAP| feature order against
        # the reference's (SageMaker Clarify flags < 0.9), and both importances per feature.
        q("ALTER TABLE {s}.drift_intervals ADD COLUMN IF NOT EXISTS attribution_ndcg double precision"),
        q("ALTER TABLE {s}.drift_intervals ADD COLUMN IF NOT EXISTS attribution jsonb"),
        q(
            """CREATE OR REPLACE VIEW {s}.drift_summary AS
               SELECT d.interval_start, d.interval_end, d.model_version, d.features, d.drifted_features,
                      d.counted_features, d.drifted_share, d.prediction_method, d.prediction_drift, d.breach,
                      x.trigger, x.reason, x.retrain_run_id, d.rows_scored, d.current_rows, d.reference_rows,
                      d.report_path, d.run_id, d.monitored_at, d.attribution_ndcg
               FROM {s}.drift_intervals d
               LEFT JOIN LATERAL (
                   SELECT trigger, reason, retrain_run_id FROM {s}.drift_decisions c
                   WHERE c.interval_start = d.interval_start AND c.interval_end = d.interval_end
                   ORDER BY c.decision_id DESC LIMIT 1) x ON true"""
        ),
        # Safeguards: which model scored and why (fallback), the score distribution, the review band.
        q("ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS requested_version integer"),
        q("ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS fallback boolean NOT NULL DEFAULT false"),
        q("ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS fallback_reason text"),
        q("ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS score_stats jsonb"),
        q("ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS review_low double precision"),
        q("ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS review_high double precision"),
        # Everything that went wrong or was handled in a degraded way, with the numbers behind it.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.alerts (
                alert_id       bigserial PRIMARY KEY,
                raised_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
                kind           text NOT NULL,
                severity       text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
                dag_id         text,
                task_id        text,
                run_id         text,
                interval_start timestamptz,
                interval_end   timestamptz,
                message        text NOT NULL,
                numbers        jsonb NOT NULL DEFAULT '{{}}',
                deliveries     jsonb NOT NULL DEFAULT '{{}}')"""
        ),
        q("CREATE INDEX IF NOT EXISTS alerts_raised ON {s}.alerts (raised_at DESC, alert_id DESC)"),
        # Partitioned scoring: one plan per partitioned attempt (its run_key is the attempt's scoring_runs
        # key), one row per scored partition, and the partitions' predictions staged until every
        # partition has succeeded and publish_partitions swaps them in, in one transaction.
        q("ALTER TABLE {s}.quarantine_rows ADD COLUMN IF NOT EXISTS partition integer"),
        q("ALTER TABLE {s}.quarantine_rows ADD COLUMN IF NOT EXISTS source_file text"),
        q("CREATE INDEX IF NOT EXISTS quarantine_rows_run ON {s}.quarantine_rows (run_key, partition)"),
        q("ALTER TABLE {s}.scoring_runs ADD COLUMN IF NOT EXISTS partitions integer"),
        q(
            """CREATE TABLE IF NOT EXISTS {s}.partition_plans (
                run_key           bigint PRIMARY KEY,
                interval_id       integer NOT NULL REFERENCES {s}.scored_intervals,
                run_id            text NOT NULL,
                partitions        integer NOT NULL CHECK (partitions > 0),
                files             jsonb NOT NULL,
                model_version     integer NOT NULL,
                requested_version integer,
                fallback_reason   text,
                planned_at        timestamptz NOT NULL DEFAULT clock_timestamp())"""
        ),
        q(
            """CREATE TABLE IF NOT EXISTS {s}.partition_runs (
                run_key          bigint NOT NULL REFERENCES {s}.partition_plans ON DELETE CASCADE,
                partition        integer NOT NULL,
                run_id           text NOT NULL,
                rows_in          bigint NOT NULL,
                rows_scored      bigint NOT NULL,
                rows_quarantined bigint NOT NULL,
                stage_seconds    jsonb NOT NULL,
                score_state      jsonb NOT NULL,
                reasons          jsonb NOT NULL,
                started_at       timestamptz NOT NULL,
                finished_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
                PRIMARY KEY (run_key, partition),
                CHECK (rows_in = rows_scored + rows_quarantined))"""
        ),
        # Partitions stage straight into prediction_rows now (earlier schema versions copied from here).
        q("DROP TABLE IF EXISTS {s}.partition_prediction_rows"),
        # Run health for dashboards: one row per score_batch attempt, and one per attempt and stage.
        q(
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
               FROM {s}.scoring_runs r JOIN {s}.scored_intervals i ON i.interval_id = r.interval_id"""
        ),
        q(
            """CREATE OR REPLACE VIEW {s}.run_stage_health AS
               SELECT i.interval_start, i.interval_end, r.run_key, r.run_id, r.status, st.key AS stage,
                      st.value::float8 AS seconds, r.rows_in / nullif(st.value::float8, 0) AS rows_per_second
               FROM {s}.scoring_runs r
               JOIN {s}.scored_intervals i ON i.interval_id = r.interval_id
               CROSS JOIN LATERAL jsonb_each_text(r.stage_seconds) st"""
        ),
        # [explain]: the top-k TreeSHAP reasons of the explained rows, keyed like prediction_rows by
        # the attempt that wrote them (published with it, deleted with it when a rerun replaces it).
        # value: the row's value as text (a category as its name); contribution: on the raw score
        # (log-odds for binary), the row's contributions plus the model's expected value add up to it.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.prediction_reason_rows (
                run_key      bigint NOT NULL,
                partition    integer,
                entity_key   text,
                rank         smallint NOT NULL,
                feature      text NOT NULL,
                value        text,
                contribution double precision NOT NULL)"""
        ),
        q(
            "CREATE UNIQUE INDEX IF NOT EXISTS prediction_reason_rows_run_entity ON {s}.prediction_reason_rows (run_key, entity_key, rank)"
        ),
        q(
            """CREATE OR REPLACE VIEW {s}.prediction_reasons AS
               SELECT i.interval_start, i.interval_end, x.entity_key, p.score, x.rank, x.feature, x.value,
                      x.contribution, r.model_version, r.run_id
               FROM {s}.scored_intervals i
               JOIN {s}.prediction_reason_rows x ON x.run_key = i.current_run_key
               JOIN {s}.prediction_rows p ON p.run_key = x.run_key AND p.entity_key = x.entity_key
               JOIN {s}.scoring_runs r ON r.run_key = i.current_run_key"""
        ),
        # Published predictions whose score fell inside the run's review band ([safeguards] review_band).
        q(
            """CREATE OR REPLACE VIEW {s}.predictions_for_review AS
               SELECT i.interval_start, i.interval_end, p.entity_key, p.score, p.predicted_class,
                      r.model_version, r.run_id, r.review_low, r.review_high
               FROM {s}.scored_intervals i
               JOIN {s}.prediction_rows p ON p.run_key = i.current_run_key
               JOIN {s}.scoring_runs r ON r.run_key = i.current_run_key
               WHERE r.review_low IS NOT NULL AND p.score BETWEEN r.review_low AND r.review_high"""
        ),
        # Estimated performance without labels (estimation.py, CBPE): one row per interval and metric
        # (auc, accuracy, precision, recall, f1 and the expected tp/fp/fn/tn), replaced when the
        # interval is estimated again; realized is filled in when labels arrive.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.estimated_performance (
                interval_start  timestamptz NOT NULL,
                interval_end    timestamptz NOT NULL,
                model_version   integer NOT NULL,
                run_id          text NOT NULL,
                metric          text NOT NULL,
                estimate        double precision NOT NULL,
                band_low        double precision NOT NULL,
                band_high       double precision NOT NULL,
                rows            bigint NOT NULL,
                threshold       double precision NOT NULL,
                realized        double precision,
                realized_rows   bigint,
                labels_as_of    timestamptz,
                estimated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
                PRIMARY KEY (interval_start, interval_end, metric))"""
        ),
        # How good the estimator has been: the estimate's error once labels arrived, and whether the band held.
        q(
            """CREATE OR REPLACE VIEW {s}.estimated_vs_realized AS
               SELECT interval_start, interval_end, model_version, metric, estimate, band_low, band_high, rows,
                      realized, realized_rows, estimate - realized AS error,
                      realized BETWEEN band_low AND band_high AS within_band,
                      realized_rows::float8 / nullif(rows, 0) AS labelled_share, threshold, labels_as_of, estimated_at
               FROM {s}.estimated_performance"""
        ),
    ]


def ensure_schema(conn: psycopg.Connection, schema: str) -> None:
    """Create the schema, tables, indexes and views if missing; safe to call on every run.

    When the schema is already at this DDL (its sha256 is recorded in <schema>.schema_version) this
    is one read and takes no table lock. It matters on the scoring path: `ALTER TABLE ... IF NOT
    EXISTS` and `CREATE INDEX IF NOT EXISTS` lock their table even when there is nothing to do, so
    running them beside an interval's open write queued every reader behind it and could deadlock
    with it (Postgres then aborted the scoring transaction).
    """
    statements = _ddl(schema)
    digest = hashlib.sha256("\n".join(statement.as_string(conn) for statement in statements).encode()).hexdigest()
    if _schema_digest(conn, schema) == digest:
        return
    with conn.transaction():
        # Serialise concurrent first runs: CREATE ... IF NOT EXISTS races on the catalogs.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"driftline-ddl:{schema}",))
        if _schema_digest(conn, schema) == digest:
            return  # another process brought it up to date while this one waited
        for statement in statements:
            conn.execute(statement)
        versions = table(schema, "schema_version")
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (ddl_sha256 text NOT NULL, applied_at timestamptz NOT NULL)").format(
                versions
            )
        )
        conn.execute(sql.SQL("DELETE FROM {}").format(versions))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (%s, now())").format(versions), (digest,))


def _schema_digest(conn: psycopg.Connection, schema: str) -> str | None:
    """The sha256 of the DDL the schema was last brought up to, or None (catalog lookup, no error)."""
    versions = table(schema, "schema_version")
    if conn.execute("SELECT to_regclass(%s)", (versions.as_string(conn),)).fetchone()[0] is None:
        return None
    row = conn.execute(sql.SQL("SELECT ddl_sha256 FROM {}").format(versions)).fetchone()
    return row[0] if row else None
