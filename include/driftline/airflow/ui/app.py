"""The FastAPI app that plugins/driftline_plugin.py mounts under URL_PREFIX: routes, auth, headers.

One deployment serves several datasets (the configs the DAG files are built from): `/` lists them
(and the configs that did not load, with their errors); `/<dataset>/reports`, `/<dataset>/trends`
(inline SVG charts, trends.py) and `/<dataset>/registry` are one dataset's pages. `/reports` and `/registry` (the plugin's menu
entries) go to the only dataset's page, or list the datasets when there are several.

Every route, the report files included, sits behind Airflow's own auth (the `_token` cookie of a
UI session or a bearer token from `POST /auth/token`): 401 without one, 403 when the user may not
see plugins. Report files are served only by an id looked up in drift_intervals, and only from
inside the configured reports folder. Everything shown is escaped (Jinja autoescape).

FastAPI, Jinja and Airflow are imported inside the functions: the plugin file imports this module
whenever Airflow loads plugins, including in processes that never serve a page. No
`from __future__ import annotations` here: FastAPI must resolve the route annotations, whose
types are imported inside create_app().
"""

from datetime import datetime
from typing import Any

from driftline.airflow.ui.conclusions import evaluation_states, waiting_candidates
from driftline.airflow.ui.queries import (
    connect,
    drift_reports,
    drifted_columns,
    page_config,
    page_datasets,
    registry_overview,
    report_summary,
    stored_report_path,
    trend_rows,
)
from driftline.airflow.ui.report_files import parse_report_id, safe_report_file
from driftline.airflow.ui.templates import render
from driftline.airflow.ui.trends import trend_page
from driftline.config import DatasetConfig

URL_PREFIX = "/driftline"
# Our pages carry no scripts; Evidently's reports need theirs, but run them in an opaque origin
# (sandbox without allow-same-origin), so a report can never use the viewer's Airflow session.
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'"
REPORT_CSP = "sandbox allow-scripts allow-popups; frame-ancestors 'self'"


def create_app():
    """The FastAPI app behind the plugin; every route requires an Airflow user allowed to see plugins."""
    import psycopg
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

    from driftline.airflow.connections import install
    from driftline.airflow.dag_defaults import DAG_ROLES, dag_id

    install()  # a [database] conn_id resolves through Airflow's connections

    app = FastAPI(
        title="driftline",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(requires_access_view(AccessView.PLUGINS))],
    )

    def page(
        request: Request,
        template: str,
        title: str,
        config: DatasetConfig | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        # Links are absolute paths from the mount point (root_path also carries any [api] base_url path);
        # home: the dataset's own pages.
        base = base_of(request)
        home = base if config is None else f"{base}/{config.name}"
        body = render(template, title=title, config=config, base=base, home=home, **context)
        headers = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff"}
        return HTMLResponse(body, status_code=status_code, headers=headers)

    @app.exception_handler(psycopg.errors.UndefinedColumn)
    @app.exception_handler(psycopg.errors.UndefinedTable)
    def outdated_schema(request: Request, exc: psycopg.Error) -> HTMLResponse:
        # The pages only read: a schema made by an older driftline is upgraded by the next
        # score_batch run or `driftline init-db`, never from here.
        config = dataset_config(request.path_params.get("dataset", ""))
        message = (
            f"Schema {config.db_schema} predates this version of driftline ({exc.diag.message_primary}). "
            "Run `driftline init-db`, or any score_batch run, to upgrade it."
        )
        return page(request, "notice", "Database schema out of date", config, status_code=503, message=message)

    def dataset_config(dataset: str) -> DatasetConfig:
        config = page_config(dataset)
        if config is None:
            raise HTTPException(status_code=404, detail="no such dataset")
        return config

    def base_of(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def interval_of(report: str) -> tuple[datetime, datetime]:
        bounds = parse_report_id(report)
        if bounds is None:
            raise HTTPException(status_code=404, detail="no such report")
        return bounds

    # Handlers are plain `def`: FastAPI runs them in its thread pool, so blocking psycopg calls never
    # stall the API server's event loop.
    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        datasets = page_datasets()
        dag_ids = {name: [dag_id(name, role) for role in DAG_ROLES] for name in datasets.names()}
        return page(
            request, "datasets", "Datasets", None, loaded=datasets.loaded, broken=datasets.broken, dag_ids=dag_ids
        )

    # The plugin's menu entries: the only dataset's page, or the list to pick one from.
    def menu_entry(request: Request, name: str) -> Response:
        names = page_datasets().names()
        if len(names) != 1:
            return index(request)
        return RedirectResponse(f"{base_of(request)}/{names[0]}/{name}", status_code=307)

    @app.get("/reports", include_in_schema=False)
    def reports_entry(request: Request) -> Response:
        return menu_entry(request, "reports")

    @app.get("/registry", include_in_schema=False)
    def registry_entry(request: Request) -> Response:
        return menu_entry(request, "registry")

    @app.get("/{dataset}/reports", response_class=HTMLResponse)
    def reports(request: Request, dataset: str) -> HTMLResponse:
        config = dataset_config(dataset)
        with connect(config) as conn:
            rows = drift_reports(conn, config.db_schema)
        return page(request, "reports", "Drift reports", config, rows=rows)

    @app.get("/{dataset}/reports/{report}/details", response_class=HTMLResponse)
    def report_details(request: Request, dataset: str, report: str) -> HTMLResponse:
        start, end = interval_of(report)
        config = dataset_config(dataset)
        with connect(config) as conn:
            if stored_report_path(conn, config.db_schema, start, end) is None:
                raise HTTPException(status_code=404, detail="no such report")
            summary = report_summary(conn, config, start, end)
            # One feature table: the summary's rows, or the stored ones of an interval without a summary.
            features = summary["feature_results"] if summary else drifted_columns(conn, config.db_schema, start, end)
        title = f"Drift of {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC"
        policy = None if config.drift is None else config.drift.trigger
        return page(
            request, "details", title, config, report_id=report, features=features, summary=summary, policy=policy
        )

    @app.get("/{dataset}/reports/{report}")
    def report_file(dataset: str, report: str) -> FileResponse:
        start, end = interval_of(report)
        config = dataset_config(dataset)
        with connect(config) as conn:
            stored = stored_report_path(conn, config.db_schema, start, end)
        path = None if stored is None or config.drift is None else safe_report_file(stored, config.drift.reports_dir)
        if path is None:
            raise HTTPException(status_code=404, detail="no such report")
        return FileResponse(
            path,
            media_type="text/html",
            headers={"Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/{dataset}/trends", response_class=HTMLResponse)
    def trends(request: Request, dataset: str) -> HTMLResponse:
        config = dataset_config(dataset)
        with connect(config) as conn:
            found = trend_rows(conn, config)
        policy = None if config.drift is None else config.drift.trigger
        return page(request, "trends", "Trends", config, **trend_page(found, policy))

    @app.get("/{dataset}/registry", response_class=HTMLResponse)
    def registry_page(request: Request, dataset: str) -> HTMLResponse:
        config = dataset_config(dataset)
        with connect(config) as conn:
            overview = registry_overview(conn, config.db_schema)
        metric_names = sorted({name for v in overview["versions"] for name in (v["metrics"] or {})})
        evaluations = evaluation_states(overview["versions"], overview["evaluations"], config.retraining.promotion)
        context = {**overview, "evaluations": evaluations, "waiting": waiting_candidates(evaluations)}
        return page(request, "registry", "Model registry", config, metric_names=metric_names, **context)

    return app
