"""OpenLineage for score_batch: each published interval as input dataset(s) -> the predictions table,
with row counts, quarantine counts and the model version as facets (docs/operate/lineage.md).

Why an event of our own rather than the Hook Lineage Collector: the collector carries Airflow Assets
(URIs) only, and the provider's asset converters drop every facet, so the counts and the model version
could not travel with it. The event goes through the provider's own client ([openlineage] transport,
or OPENLINEAGE__TRANSPORT__* / openlineage.yml) under the run id the provider gives the task, so a
consumer (Marquez, DataHub) merges it into the task's run. Without the provider (the optional extra
`lineage`), or with OpenLineage disabled, nothing is emitted. Lineage never fails a run: an emission
error is logged and the run goes on.
"""

from __future__ import annotations

import logging
from urllib.parse import urlparse

log = logging.getLogger(__name__)
PRODUCER = "https://github.com/driftline/driftline"


def postgres_namespace(url: str) -> tuple[str, str]:
    """(namespace, database) of a PostgreSQL URL or key=value conninfo, per the OpenLineage naming
    spec: postgres://host:port, no credentials. A socket directory names the local server."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    host = str(params.get("host") or "").split(",")[0]  # a multi-host URL: its first host
    host = "localhost" if not host or host.startswith("/") else host
    port = str(params.get("port") or "").split(",")[0] or "5432"
    host = f"[{host}]" if ":" in host else host  # IPv6
    return f"postgres://{host}:{port}", str(params.get("dbname") or params.get("user") or "postgres")


def input_datasets(plan: dict, resolve_url=None) -> list[tuple[str, str]]:
    """(namespace, name) of each input of an interval plan (sources.plan.interval_plan): a local file
    `file` + its path, an object `s3://bucket` + its key, a SQL source `postgres://host:port` +
    db.schema.table (db.query for a query source)."""
    if plan["source"] == "sql":
        connection = plan["connection"]
        url = connection.get("url") or (resolve_url(connection["conn_id"]) if resolve_url else "")
        namespace, database = postgres_namespace(url or "postgresql://localhost")
        table = plan.get("table") or "query"
        if "." not in table:
            table = f"public.{table}"
        return [(namespace, f"{database}.{table}")]
    out = []
    for location in plan.get("files") or [plan["location"]]:
        parsed = urlparse(location)
        if parsed.scheme in ("s3", "gs", "gcs", "az", "abfs"):
            scheme = "gs" if parsed.scheme == "gcs" else parsed.scheme
            out.append((f"{scheme}://{parsed.netloc}", parsed.path.lstrip("/")))
        else:
            out.append(("file", parsed.path if parsed.scheme == "file" else location))
    return out


def build_event(config, summary: dict, plan: dict, db_url: str, run_id: str, job: tuple[str, str]):
    """The COMPLETE RunEvent of one published interval: inputs -> schema.predictions with the counts."""
    from datetime import datetime, timezone
    from typing import cast

    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import (
        RunFacet,
        data_quality_metrics_input_dataset,
        job_type_job,
        output_statistics_output_dataset,
    )

    namespace, database = postgres_namespace(db_url)
    rows_in, quarantined = summary["rows_in"], summary["rows_quarantined"]
    datasets = input_datasets(plan)
    # rows_in is the interval's total: it is one input's row count only when there is one input.
    quality = data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
        rowCount=rows_in if len(datasets) == 1 else None, columnMetrics={}
    )
    inputs = [
        InputDataset(namespace=ns, name=name, inputFacets={"dataQualityMetrics": quality}) for ns, name in datasets
    ]
    output = OutputDataset(
        namespace=namespace,
        name=f"{database}.{config.db_schema}.predictions",
        outputFacets={
            "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=summary["rows_scored"]
            )
        },
    )

    # Custom run facets (no schema of their own): RunFacet with extra properties, as the spec allows.
    # attrs drops the leading underscore of the private field `_producer`: its keyword is `producer`.
    def custom(**properties) -> RunFacet:
        return cast(RunFacet, RunFacet(producer=PRODUCER).with_additional_properties(**properties))

    run_facets = {
        "driftline_model": custom(dataset=config.name, modelVersion=summary.get("model_version")),
        "driftline_counts": custom(rowsIn=rows_in, rowsScored=summary["rows_scored"], rowsQuarantined=quarantined),
    }
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=datetime.now(timezone.utc).isoformat(),
        run=Run(runId=run_id, facets=run_facets),
        # The job type the provider gives a task's events, so this event does not change the job.
        job=Job(
            namespace=job[0],
            name=job[1],
            facets={
                "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="AIRFLOW", jobType="TASK")
            },
        ),
        inputs=inputs,
        outputs=[output],
        producer=PRODUCER,
    )


def emit_interval(config_path: str, summary: dict) -> bool:
    """Emit the published interval's lineage through the provider's client; False when not emitted
    (provider not installed, OpenLineage disabled, no task running, or the emission failed)."""
    try:
        from airflow.providers.openlineage import conf
        from airflow.providers.openlineage.plugins import macros
        from airflow.providers.openlineage.plugins.adapter import OpenLineageAdapter
        from airflow.sdk import get_current_context
    except ImportError:
        return False
    if conf.is_disabled():
        return False
    try:
        from datetime import datetime

        from driftline import db
        from driftline.config import SqlInput, load_config
        from driftline.sources.plan import interval_plan

        context = get_current_context()
        ti = context["ti"]
        config = load_config(config_path)
        start, end = (datetime.fromisoformat(summary[k]) for k in ("interval_start", "interval_end"))
        plan = interval_plan(config, start, end)
        if isinstance(config.input_uri, SqlInput):
            from driftline.sources.sql import source_url

            # The URL scoring read from (a conn_id through the lookup run_step installed), and its table.
            plan["connection"] = {"url": source_url(config.input_uri)}
            plan["table"] = config.input_uri.table
        db_url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
        # The provider's own run id and job name of this task instance (its public macros, so they
        # follow its rules, run_after included): the consumer merges this event into the task's run.
        job = (macros.lineage_job_namespace(), macros.lineage_job_name(ti))
        event = build_event(config, summary, plan, db_url, macros.lineage_run_id(ti), job)
        OpenLineageAdapter().get_or_create_openlineage_client().emit(event)
        return True
    except Exception as exc:  # noqa: BLE001 - lineage is best effort, never a failed run
        from driftline.errors import safe_message

        # The scrubbed message (no row data, no traceback): the type name alone hid which call failed.
        log.warning("OpenLineage event for %s not emitted: %s", summary.get("interval_start"), safe_message(exc))
        return False
