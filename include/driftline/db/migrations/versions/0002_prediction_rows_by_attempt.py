"""prediction_rows keyed by attempt (run_key) instead of interval; superseded indexes dropped.

Idempotent on purpose, like every revision up to 0004: they also run over deployments made
before Alembic (schema_version held a DDL digest then), whatever state those are in.

Revision ID: 0002
Revises: 0001
"""

from driftline.db.schema import execute_in_revision as execute

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        # Earlier schema versions keyed the rows by interval_id: key them by the interval's current
        # attempt instead (once; the views that read the old column are dropped with it and created
        # again by 0004).
        """DO $driftline_migrate$ BEGIN
                IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(format('%I.prediction_rows', {name}))
                           AND attname = 'interval_id' AND NOT attisdropped) THEN
                    ALTER TABLE {s}.prediction_rows ADD COLUMN IF NOT EXISTS run_key bigint;
                    UPDATE {s}.prediction_rows p SET run_key = i.current_run_key
                        FROM {s}.scored_intervals i WHERE i.interval_id = p.interval_id;
                    DELETE FROM {s}.prediction_rows WHERE run_key IS NULL;
                    ALTER TABLE {s}.prediction_rows ALTER COLUMN run_key SET NOT NULL, DROP COLUMN interval_id CASCADE;
                END IF;
            END $driftline_migrate$""",
        "ALTER TABLE {s}.prediction_rows ADD COLUMN IF NOT EXISTS partition integer",
        # One B-tree: unique per attempt and entity, so a duplicate key that slipped past the
        # per-chunk check (far apart in a file) fails the interval loudly instead of doubling it.
        # Reads of an interval and the delete of a replaced attempt use it too. Lookups of one entity
        # across all intervals do not: add an index on entity_key if analysts need them (2-4 server
        # CPU-s more per 1M rows written; docs/performance.md).
        "CREATE UNIQUE INDEX IF NOT EXISTS prediction_rows_run_entity ON {s}.prediction_rows (run_key, entity_key)",
        # Superseded (earlier schema versions).
        "DROP INDEX IF EXISTS {s}.prediction_rows_interval_key",
        "DROP INDEX IF EXISTS {s}.prediction_rows_entity_interval",
        "DROP INDEX IF EXISTS {s}.prediction_rows_interval_brin",
        "DROP INDEX IF EXISTS {s}.prediction_rows_interval",
        "DROP INDEX IF EXISTS {s}.prediction_rows_interval_entity",
        "DROP INDEX IF EXISTS {s}.prediction_rows_entity",
    )


def downgrade() -> None:
    raise NotImplementedError("driftline schemas are upgraded only; restore a backup to go back")
