"""Per-segment monitoring ([monitoring] segments): the top values kept per model version, the
interval's rows / prediction mean / drifted features per segment value, the estimated and realized
performance per segment, and the segment_performance reader view.

Idempotent although it need not be (no deployment predates it): the migration tests replay every
revision over a finished schema.

Revision ID: 0005
Revises: 0004
"""

from driftline.db.schema import execute_in_revision as execute

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        # Which values of a segment column are monitored on their own, fixed from the model's reference
        # (training) sample so they stay the same across intervals; every other value is "other".
        """CREATE TABLE IF NOT EXISTS {s}.segment_values (
                model_version   integer NOT NULL,
                segment_column  text NOT NULL,
                segment_value   text NOT NULL,
                rank            integer NOT NULL,
                reference_rows  bigint NOT NULL,
                PRIMARY KEY (model_version, segment_column, segment_value))""",
        """CREATE TABLE IF NOT EXISTS {s}.segment_intervals (
                interval_start    timestamptz NOT NULL,
                interval_end      timestamptz NOT NULL,
                model_version     integer NOT NULL,
                run_id            text NOT NULL,
                segment_column    text NOT NULL,
                segment_value     text NOT NULL,
                rows              bigint NOT NULL,
                prediction_mean   double precision,
                drifted_features  integer,
                drift_note        text,
                monitored_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
                PRIMARY KEY (interval_start, interval_end, segment_column, segment_value))""",
        """CREATE TABLE IF NOT EXISTS {s}.segment_estimates (
                interval_start  timestamptz NOT NULL,
                interval_end    timestamptz NOT NULL,
                segment_column  text NOT NULL,
                segment_value   text NOT NULL,
                metric          text NOT NULL,
                estimate        double precision,
                band_low        double precision,
                band_high       double precision,
                realized        double precision,
                realized_rows   bigint,
                PRIMARY KEY (interval_start, interval_end, segment_column, segment_value, metric))""",
        # Created only where missing: 0006 gives the view another column, which a replay must not drop.
        """DO $$ BEGIN
           IF NOT EXISTS (SELECT 1 FROM information_schema.views WHERE table_schema = {name}
                          AND table_name = 'segment_performance') THEN
           CREATE VIEW {s}.segment_performance AS
               SELECT i.interval_start, i.interval_end, i.segment_column, i.segment_value, i.rows,
                      i.prediction_mean, i.drifted_features, e.metric, e.estimate, e.band_low AS estimate_low,
                      e.band_high AS estimate_high, e.realized, e.realized_rows, i.drift_note, i.model_version
               FROM {s}.segment_intervals i
               LEFT JOIN {s}.segment_estimates e USING (interval_start, interval_end, segment_column, segment_value);
           END IF;
        END $$""",
    )


def downgrade() -> None:
    raise NotImplementedError("driftline schemas are upgraded only; restore a backup to go back")
