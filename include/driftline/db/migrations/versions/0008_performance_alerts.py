"""Alert band from the data per estimate: estimated_performance keeps the band (alert_low, alert_high:
the holdout's chunk mean +- [drift.trigger] estimated_metric_std standard deviations, as the interval
was estimated), and the performance_alerts reader view says, per interval and metric, whether the
estimate and the realized value fall outside it. A new view rather than new columns of
estimated_vs_realized: revision 0004 re-creates that view on replay and would have to drop them.

Idempotent (the migration tests replay every revision over a finished schema).

Revision ID: 0007
Revises: 0006
"""

from driftline.db.schema import execute_in_revision as execute

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        """ALTER TABLE {s}.estimated_performance
               ADD COLUMN IF NOT EXISTS alert_low double precision,
               ADD COLUMN IF NOT EXISTS alert_high double precision""",
        """CREATE OR REPLACE VIEW {s}.performance_alerts AS
               SELECT interval_start, interval_end, model_version, metric, estimate, alert_low, alert_high,
                      estimate < alert_low OR estimate > alert_high AS estimate_alert,
                      realized, realized_rows,
                      realized < alert_low OR realized > alert_high AS realized_alert
               FROM {s}.estimated_performance WHERE alert_low IS NOT NULL""",
    )


def downgrade() -> None:
    raise NotImplementedError("driftline schemas are upgraded only; restore a backup to go back")
