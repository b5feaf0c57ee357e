"""score_batch in one task: prepare the database, score an interval and publish it, check a published interval.

The interval is replaced in one transaction (delete + COPY), chunk by chunk, so memory does not
grow with the interval and readers see either the previous contents or the new ones, never a mix.
The path to the COPY: airflow/tasks.score_interval -> batch.score_interval -> run.ScoringRun.write.
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import datetime, timezone

from driftline import db
from driftline.attempt import QuarantineBudgetExceeded
from driftline.config import load_config
from driftline.db import runs
from driftline.errors import BadInput
from driftline.intervals import utc
from driftline.run import ScoringRun
from driftline.sources.prefetch import read_ahead

log = logging.getLogger(__name__)


def prepare_database(config_path: str, analyst_role: str | None = None, analyst_password: str | None = None) -> str:
    """Create the deployment's schema if needed (and the analysts' read-only role, when named);
    returns the masked database URL."""
    config = load_config(config_path)
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url) as conn:
        db.ensure_schema(conn, config.db_schema)
        if analyst_role:
            db.grant_analyst_role(conn, config.db_schema, analyst_role, analyst_password)
    return db.mask_url(url)


def score_interval(
    config_path: str,
    interval_start: datetime,
    interval_end: datetime,
    run_id: str,
    model_version: int | None = None,
) -> dict:
    """Score one data interval end to end and replace it in Postgres; returns the run summary."""
    config = load_config(config_path)
    start, end = utc(interval_start), utc(interval_end)
    started_at = datetime.now(timezone.utc)
    source = config.input_location(start, end)
    # Reading starts first: the first chunks are parsed (Arrow releases the GIL) while the task
    # connects, takes the interval lock and loads and verifies the model.
    with (
        read_ahead(source, config, start, end) as chunks,
        ScoringRun.open(
            config,
            start,
            end,
            run_id,
            str(source),
            f"score_interval {run_id}",
            lock=True,
            ensure_schema=True,
            started_at=started_at,
        ) as run,
    ):
        run.claim()
        scorer, validator = run.scorer(run.choose_model(model_version))
        # Quarantined rows are spilled to disk and written after the loop: they go in whether or not
        # the budget holds, while the predictions only go in when it does.
        with tempfile.TemporaryFile() as spill:
            try:
                with run.conn.transaction():
                    run.write(scorer, validator, chunks, spill)  # the COPY
                    run.publish(scorer.model.manifest.get("score_reference"), spill)
            except QuarantineBudgetExceeded as exc:
                # The interval keeps its previous predictions; the quarantine and the failed run are kept.
                with run.conn.transaction():
                    run.write_quarantine(spill, published=False)
                    run.record("failed", str(exc))
                raise
    log.info("scored interval %s: %s", run.label, json.dumps(run.summary(), ensure_ascii=False))
    return run.summary()


class IntervalCheckError(BadInput):
    """A published interval that is missing or does not add up: fail now, a retry reads the same rows."""


def check_interval(config_path: str, interval_start: datetime, interval_end: datetime) -> dict:
    """Re-read the published interval from Postgres and assert rows_in = rows_scored + rows_quarantined."""
    config = load_config(config_path)
    start, end = utc(interval_start), utc(interval_end)
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url) as conn:
        row = runs.published_counts(conn, config.db_schema, start, end)
    if row is None:
        raise IntervalCheckError(f"interval [{start.isoformat()}, {end.isoformat()}) has no published predictions")
    run_key, run_id, version, rows_in, rows_scored, rows_quarantined, stored_predictions, stored_quarantine = row
    if (
        rows_in != rows_scored + rows_quarantined
        or stored_predictions != rows_scored
        or stored_quarantine != rows_quarantined
    ):
        raise IntervalCheckError(
            f"interval [{start.isoformat()}, {end.isoformat()}) does not add up: rows_in={rows_in}, "
            f"rows_scored={rows_scored} (stored {stored_predictions}), rows_quarantined={rows_quarantined} "
            f"(stored {stored_quarantine})"
        )
    return {
        "interval_start": start.isoformat(),
        "interval_end": end.isoformat(),
        "run_id": run_id,
        "model_version": version,
        "rows_in": rows_in,
        "rows_scored": rows_scored,
        "rows_quarantined": rows_quarantined,
    }
