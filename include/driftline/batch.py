"""score_batch in one task: prepare the database, score an interval and publish it, check a published interval.

The interval is replaced in one transaction (delete + COPY), chunk by chunk, so memory does not
grow with the interval and readers see either the previous contents or the new ones, never a mix.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from datetime import datetime, timezone

from driftline import db
from driftline.attempt import (
    Attempt,
    Counts,
    QuarantineBudgetExceeded,
    choose_model,
    delete_replaced_predictions,
    make_scorer,
    publish,
    record,
    record_failure,
    write_quarantine,
)
from driftline.chunks import score_input
from driftline.config import load_config
from driftline.db import runs
from driftline.errors import BadInput
from driftline.intervals import utc
from driftline.scoring.safeguards import OutputSanityError
from driftline.sources.prefetch import read_ahead
from driftline.validation import Validator

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
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    started_at = datetime.now(timezone.utc)
    source = config.input_location(start, end)
    # Reading starts first: the first chunks are parsed (Arrow releases the GIL) while the task
    # connects, takes the interval lock and loads and verifies the model.
    with (
        read_ahead(source, config, start, end) as chunks,
        db.connect(url, application_name=f"driftline score_interval {run_id}", autocommit=True) as conn,
    ):
        db.ensure_schema(conn, config.db_schema)
        label = f"[{start.isoformat()}, {end.isoformat()})"
        with db.interval_lock(conn, config.db_schema, label):
            attempt = Attempt(
                config,
                start,
                end,
                runs.interval_id(conn, config.db_schema, start, end),
                runs.new_run_key(conn, config.db_schema),
                run_id,
                str(source),
                started_at,
                model_version=model_version,
            )
            try:
                model = choose_model(conn, attempt, model_version)
                attempt.counts = Counts()
                _score_and_publish(conn, attempt, model, chunks)
            except QuarantineBudgetExceeded:
                raise
            except Exception as exc:
                record_failure(conn, attempt, exc)
                if isinstance(exc, OutputSanityError):
                    exc.alert_id = attempt.alert("output_sanity", "critical", str(exc), exc.numbers)
                raise
    log.info("scored interval %s: %s", label, json.dumps(attempt.summary(), ensure_ascii=False))
    return attempt.summary()


def _score_and_publish(conn, attempt: Attempt, model, chunks) -> None:
    stages = attempt.counts.stage_seconds
    t = time.perf_counter()
    validator = Validator(attempt.config)
    stages["load_suite"] += time.perf_counter() - t
    scorer = make_scorer(conn, attempt, model)
    stages["compile_model"] += scorer.compile_seconds

    # Quarantined rows are spilled to disk and written after the loop: they go in whether or not the
    # budget holds, while the predictions only go in when it does.
    with tempfile.TemporaryFile() as spill:
        try:
            with conn.transaction():
                # The replaced attempt's rows are deleted on the writer thread while the first chunk
                # is read and scored (its connection is idle until then); a rollback restores them.
                score_input(
                    conn,
                    attempt,
                    scorer,
                    validator,
                    spill,
                    chunks,
                    before_writes=lambda: delete_replaced_predictions(conn, attempt),
                )
                publish(conn, attempt, model.manifest.get("score_reference"), spill)
        except QuarantineBudgetExceeded as exc:
            # The interval keeps its previous predictions; the quarantine and the failed run are kept.
            with conn.transaction():
                write_quarantine(conn, attempt, spill, published=False)
                record(conn, attempt, "failed", str(exc))
            raise


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
