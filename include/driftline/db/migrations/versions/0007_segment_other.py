"""Segments: the remainder bucket (values outside a column's top_n) is told from a real value
"other" by a flag, segment_other, part of the key of segment_intervals and segment_estimates and
shown by segment_performance. Before it, a real category "other" was merged into the remainder.

Idempotent (the migration tests replay every revision over a finished schema): the column is added,
and old "other" rows marked as the remainder they were, only where it is missing.

Revision ID: 0006
Revises: 0005
"""

from driftline.db.schema import execute_in_revision as execute

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    statements = []
    for table in ("segment_intervals", "segment_estimates"):
        key = "interval_start, interval_end, segment_column, segment_value, segment_other"
        key += ", metric" if table == "segment_estimates" else ""
        statements.append(
            f"""DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = {{name}}
                               AND table_name = '{table}' AND column_name = 'segment_other') THEN
                    ALTER TABLE {{s}}.{table} ADD COLUMN segment_other boolean NOT NULL DEFAULT false;
                    UPDATE {{s}}.{table} SET segment_other = true WHERE segment_value = 'other';
                    ALTER TABLE {{s}}.{table} DROP CONSTRAINT {table}_pkey;
                    ALTER TABLE {{s}}.{table} ADD PRIMARY KEY ({key});
                END IF;
            END $$"""
        )
    execute(
        *statements,
        """CREATE OR REPLACE VIEW {s}.segment_performance AS
               SELECT i.interval_start, i.interval_end, i.segment_column, i.segment_value, i.rows,
                      i.prediction_mean, i.drifted_features, e.metric, e.estimate, e.band_low AS estimate_low,
                      e.band_high AS estimate_high, e.realized, e.realized_rows, i.drift_note, i.model_version,
                      i.segment_other
               FROM {s}.segment_intervals i
               LEFT JOIN {s}.segment_estimates e
                   USING (interval_start, interval_end, segment_column, segment_value, segment_other)""",
    )


def downgrade() -> None:
    raise NotImplementedError("driftline schemas are upgraded only; restore a backup to go back")
