"""Pages inside the Airflow UI: drift reports and the model registry (read-only).

`create_app()` builds the FastAPI app that plugins/driftline_plugin.py mounts under URL_PREFIX.
Every route, the report files included, sits behind Airflow's own auth (the `_token` cookie of a
UI session or a bearer token from `POST /auth/token`): 401 without one, 403 when the user may not
see plugins. Report files are served only by an id looked up in drift_intervals, and only from
inside the configured reports folder. Everything shown is escaped (Jinja autoescape).

FastAPI, Jinja and Airflow are imported inside the functions: the plugin file imports this module
whenever Airflow loads plugins, including in processes that never serve a page. No
`from __future__ import annotations` here: FastAPI must resolve the route annotations, whose
types are imported inside create_app().
"""

import functools
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from driftline.config import DatasetConfig, default_config_path, load_config

URL_PREFIX = "/driftline"
# A report is one monitored interval: drift_intervals' primary key (interval_start, interval_end).
_REPORT_ID = re.compile(r"^(\d{8}T\d{6}Z)--(\d{8}T\d{6}Z)$")
_ID_TIME = "%Y%m%dT%H%M%SZ"
# Our pages carry no scripts; Evidently's reports need theirs, but run them in an opaque origin
# (sandbox without allow-same-origin), so a report can never use the viewer's Airflow session.
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'"
REPORT_CSP = "sandbox allow-scripts allow-popups; frame-ancestors 'self'"


def report_id(interval_start: datetime, interval_end: datetime) -> str:
    """The URL id of the drift report of one interval (UTC, second precision)."""
    return f"{_as_utc(interval_start):{_ID_TIME}}--{_as_utc(interval_end):{_ID_TIME}}"


def parse_report_id(value: str) -> tuple[datetime, datetime] | None:
    """(interval_start, interval_end) of a report id, or None when it is not one."""
    match = _REPORT_ID.match(value)
    if not match:
        return None
    try:
        start, end = (datetime.strptime(part, _ID_TIME).replace(tzinfo=timezone.utc) for part in match.groups())
    except ValueError:
        return None
    return start, end


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def safe_report_file(stored_path: str, reports_dir: Path) -> Path | None:
    """The report file if it is an existing .html file inside reports_dir (symlinks resolved), else None."""
    try:
        path = Path(stored_path).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(reports_dir.resolve()) or path.suffix != ".html" or not path.is_file():
        return None
    return path


# -- data -------------------------------------------------------------------------------------------


def _config() -> DatasetConfig:
    return load_config(default_config_path())


def _connect(config: DatasetConfig):
    from driftline import db

    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    return db.connect(url, application_name="driftline-ui", autocommit=True)


def _exists(conn, schema: str, name: str) -> bool:
    from psycopg import sql

    # to_regclass takes a text name: quote it the way Postgres would, never by string formatting.
    qualified = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name)).as_string(conn)
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()[0]


def _rows(conn, query, params: tuple = ()) -> list[dict[str, Any]]:
    cursor = conn.execute(query, params)
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def drift_reports(conn, schema: str, limit: int = 500) -> list[dict[str, Any]]:
    """One row per monitored interval, newest first, with its latest trigger decision."""
    from psycopg import sql

    from driftline.db import table

    if not _exists(conn, schema, "drift_summary"):
        return []
    rows = _rows(
        conn,
        sql.SQL(
            "SELECT interval_start, interval_end, model_version, features, drifted_features, counted_features, "
            "drifted_share, prediction_method, prediction_drift, breach, trigger, reason, retrain_run_id, "
            "rows_scored, current_rows, reference_rows, run_id, monitored_at "
            "FROM {} ORDER BY interval_start DESC, interval_end DESC LIMIT %s"
        ).format(table(schema, "drift_summary")),
        (limit,),
    )
    for row in rows:
        row["report_id"] = report_id(row["interval_start"], row["interval_end"])
    return rows


def drifted_columns(conn, schema: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per-feature drift results of one interval."""
    from psycopg import sql

    from driftline.db import table

    return _rows(
        conn,
        sql.SQL(
            "SELECT column_name, column_type, method, statistic, threshold, drifted, effect_size, counted "
            "FROM {} WHERE interval_start = %s AND interval_end = %s ORDER BY counted DESC, drifted DESC, column_name"
        ).format(table(schema, "drift_features")),
        (start, end),
    )


def report_summary(conn, config: DatasetConfig, start: datetime, end: datetime) -> str:
    """The driftline summary that heads the interval's HTML report (escaped HTML), or "" without one."""
    from driftline.drift.summary import load_summary, summary_html

    summary = None if config.drift is None else load_summary(conn, config.db_schema, start, end)
    return "" if summary is None else summary_html(config.name, summary, config.drift.trigger)


def stored_report_path(conn, schema: str, start: datetime, end: datetime) -> str | None:
    from psycopg import sql

    from driftline.db import table

    if not _exists(conn, schema, "drift_intervals"):
        return None
    row = conn.execute(
        sql.SQL("SELECT report_path FROM {} WHERE interval_start = %s AND interval_end = %s").format(
            table(schema, "drift_intervals")
        ),
        (start, end),
    ).fetchone()
    return row[0] if row else None


def registry_overview(conn, schema: str) -> dict[str, Any]:
    """Versions with aliases and metrics (own holdout, and shared holdout at promotion), promotion
    history and evaluations (newest first) and realized performance."""
    from psycopg import sql

    from driftline import registry
    from driftline.db import table

    if not _exists(conn, schema, "model_versions"):
        return {"versions": [], "history": [], "realized": [], "shared": {}, "evaluations": []}
    versions = registry.list_versions(conn, schema)
    history = list(reversed(registry.promotion_history(conn, schema)))
    shared, evaluations = {}, []
    if _exists(conn, schema, "model_evaluations"):
        from driftline.retraining.lifecycle import shared_holdout_at_promotion

        shared = shared_holdout_at_promotion(conn, schema)
        evaluations = _rows(
            conn,
            sql.SQL(
                "SELECT evaluation_id, evaluated_at, candidate_version, champion_version, holdout_start, holdout_end, "
                "holdout_rows, holdout_reason, passed, failures, run_id FROM {} ORDER BY evaluation_id DESC LIMIT 50"
            ).format(table(schema, "model_evaluations")),
        )
    realized = []
    if _exists(conn, schema, "realized_performance"):
        realized = _rows(
            conn,
            sql.SQL(
                "SELECT interval_start, interval_end, model_version, rows_predicted, rows_labelled, metrics, "
                "labels_as_of FROM {} ORDER BY interval_start DESC LIMIT 200"
            ).format(table(schema, "realized_performance")),
        )
    return {"versions": versions, "history": history, "realized": realized, "shared": shared, "evaluations": evaluations,
            "importance": champion_importance(conn, schema)}


def champion_importance(conn, schema: str) -> dict[str, Any] | None:
    """The champion's global importance: LightGBM gain per feature, read from its verified model
    text (explain.gain_importance), largest first with its share; None without a loadable champion."""
    from driftline.errors import DriftlineError
    from driftline.scoring.explain import gain_importance
    from driftline.registry import load_model

    try:
        model = load_model(conn, schema, scoring_only=True)
    except DriftlineError:
        return None
    gains = gain_importance(model.text or b"")
    total = sum(gains.values()) or 1.0
    features = [{"feature": name, "gain": gain, "share": gain / total}
                for name, gain in sorted(gains.items(), key=lambda item: -item[1])]
    return {"version": model.version, "features": features}


# -- pages ------------------------------------------------------------------------------------------

_LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} · driftline</title>
<style>
 body{font-family:system-ui,sans-serif;margin:1.2rem;color:#1a202c}
 nav a{margin-right:1rem} h1{font-size:1.3rem} h2{font-size:1.1rem;margin-top:1.6rem}
 table{border-collapse:collapse;font-size:.88rem} th,td{border-bottom:1px solid #e2e8f0;padding:.3rem .6rem;text-align:left;vertical-align:top}
 th{background:#f7fafc} td.num{text-align:right;font-variant-numeric:tabular-nums}
 .yes{color:#c53030;font-weight:600} .no{color:#2f855a} .muted{color:#718096} .tag{background:#ebf8ff;border-radius:4px;padding:0 .3rem}
</style></head><body>
<nav><a href="{{ base }}/reports">Drift reports</a><a href="{{ base }}/registry">Model registry</a>
<span class="muted">dataset {{ config.name }} · schema {{ config.db_schema }}</span></nav>
<h1>{{ title }}</h1>
{% block body %}{% endblock %}
</body></html>"""

_REPORTS = """{% extends "layout" %}{% block body %}
{% if not rows %}<p>No drift reports yet: they appear when <code>monitor_drift</code> has run for an interval.</p>
{% else %}<table><tr><th>interval</th><th>model</th><th>sampled rows</th><th>drifted features</th><th>drifted share</th>
<th>prediction drift</th><th>breach</th><th>decision</th><th>run</th><th>report</th></tr>
{% for r in rows %}<tr>
<td>{{ r.interval_start | when }} → {{ r.interval_end | when }}</td>
<td>v{{ r.model_version }}</td>
<td class="num">{{ r.current_rows }} / {{ r.rows_scored }}</td>
<td class="num">{{ r.counted_features }} counted, {{ r.drifted_features }} flagged of {{ r.features }}</td>
<td class="num">{{ "%.2f" | format(r.drifted_share) }}</td>
<td class="num">{{ "%.3f" | format(r.prediction_drift) }} <span class="muted">{{ r.prediction_method }}</span></td>
<td class="{{ 'yes' if r.breach else 'no' }}">{{ 'yes' if r.breach else 'no' }}</td>
<td>{% if r.trigger %}<span class="yes">retrain</span>{% if r.retrain_run_id %} <span class="muted">{{ r.retrain_run_id }}</span>{% endif %}{% else %}none{% endif %}
<div class="muted">{{ r.reason or '' }}</div></td>
<td class="muted">{{ r.run_id }}</td>
<td><a href="{{ base }}/reports/{{ r.report_id }}/details">details</a> · <a href="{{ base }}/reports/{{ r.report_id }}" target="_blank" rel="noopener">open HTML</a></td>
</tr>{% endfor %}</table>{% endif %}
{% endblock %}"""

_DETAILS = """{% extends "layout" %}{% block body %}
<p><a href="{{ base }}/reports">← all reports</a> · <a href="{{ base }}/reports/{{ report_id }}" target="_blank" rel="noopener">open the Evidently report</a></p>
{{ summary | safe }}{# report_summary.summary_html escapes every value itself #}
<table><tr><th>column</th><th>type</th><th>method</th><th>statistic</th><th>threshold</th><th>flagged</th><th>effect size</th><th>counted</th></tr>
{% for f in features %}<tr><td>{{ f.column_name }}</td><td>{{ f.column_type }}</td><td>{{ f.method }}</td>
<td class="num">{{ f.statistic | number }}</td><td class="num">{{ f.threshold | number }}</td>
<td class="{{ 'yes' if f.drifted else 'no' }}">{{ 'yes' if f.drifted else 'no' }}</td>
<td class="num">{{ f.effect_size | number }}</td><td class="{{ 'yes' if f.counted else 'no' }}">{{ 'yes' if f.counted else 'no' }}</td></tr>
{% endfor %}</table>
{% endblock %}"""

_REGISTRY = """{% extends "layout" %}{% block body %}
{% if not versions %}<p>No model registered yet: run <code>driftline train</code> or <code>retrain_model</code>.</p>{% else %}
<h2>Versions</h2>
{% set shared = shared or {} %}{% set primary = config.retraining.metric %}
<table><tr><th>version</th><th>status</th><th>aliases</th>{% for m in metric_names %}<th>{{ m }}<br><span class="muted">own holdout</span></th>{% endfor %}
<th>{{ primary }}<br><span class="muted">shared holdout at promotion</span></th><th>sha256</th><th>created</th></tr>
{% for v in versions %}{% set at = shared.get(v.version) %}<tr><td>v{{ v.version }}</td><td>{{ v.status }}{% if v.pruned_at %} <span class="muted">(pruned)</span>{% endif %}</td>
<td>{% for a in v.aliases %}<span class="tag">{{ a }}</span> {% endfor %}</td>
{% for m in metric_names %}<td class="num">{{ v.metrics.get(m) | number }}</td>{% endfor %}
<td class="num">{% if at %}{{ at.metrics.get(primary) | number }} <span class="muted">vs v{{ at.champion_version }} {{ at.champion_metrics.get(primary) | number }}, {{ at.rows }} rows, evaluation {{ at.evaluation_id }}</span>{% else %}-{% endif %}</td>
<td class="muted">{{ v.sha256[:12] }}</td><td>{{ v.created_at | when }}</td></tr>{% endfor %}</table>
<p class="muted">Own holdout: the newest rows of each version's own training window (different rows per version, not comparable).
Shared holdout at promotion: the rows neither the version nor the champion it replaced trained on, both scored on them
(evaluation below); "-" when it became champion without one (<code>driftline train</code>).</p>
{% if importance %}<h2>Champion v{{ importance.version }}: global feature importance</h2>
<table><tr><th>feature</th><th>total split gain</th><th>share</th></tr>
{% for f in importance.features %}<tr><td>{{ f.feature }}</td><td class="num">{{ f.gain | number }}</td>
<td class="num">{{ "%.1f%%" | format(100 * f.share) }}</td></tr>{% endfor %}</table>
<p class="muted">LightGBM gain importance read from the champion's model text: how much each feature reduced the training loss.
Per-row reasons (TreeSHAP, [explain] in the config) are in the <code>prediction_reasons</code> view; attribution drift per
interval in <code>drift_summary.attribution_ndcg</code>.</p>{% endif %}
<h2>Evaluations</h2>
{% if not evaluations %}<p class="muted">No candidate evaluated yet.</p>{% else %}
<table><tr><th>#</th><th>when</th><th>candidate</th><th>champion</th><th>shared holdout</th><th>why these rows</th><th>verdict</th><th>run</th></tr>
{% for e in evaluations %}<tr><td>{{ e.evaluation_id }}</td><td>{{ e.evaluated_at | when }}</td><td>v{{ e.candidate_version }}</td>
<td>{% if e.champion_version %}v{{ e.champion_version }}{% else %}-{% endif %}</td>
<td class="num">{{ e.holdout_rows }} rows{% if e.holdout_start %} {{ e.holdout_start | when }} → {{ e.holdout_end | when }}{% endif %}</td>
<td>{{ e.holdout_reason }}</td>
<td class="{{ 'no' if e.passed else 'yes' }}">{{ 'passed' if e.passed else 'failed' }}{% for f in e.failures %}<div class="muted">{{ f }}</div>{% endfor %}</td>
<td class="muted">{{ e.run_id or '' }}</td></tr>{% endfor %}</table>{% endif %}
<h2>Promotion history</h2>
{% if not history %}<p class="muted">No promotions yet.</p>{% else %}
<table><tr><th>when</th><th>action</th><th>from</th><th>to</th><th>reason</th><th>actor</th><th>reviewer comment</th><th>run</th></tr>
{% for e in history %}<tr><td>{{ e.created_at | when }}</td><td>{{ e.action }}</td>
<td>{% if e.from_version %}v{{ e.from_version }}{% else %}-{% endif %}</td><td>v{{ e.to_version }}</td>
<td>{{ e.reason }}</td><td>{{ e.actor or '' }}</td><td>{{ e.review_comment or '' }}</td><td class="muted">{{ e.run_id or '' }}</td></tr>{% endfor %}</table>{% endif %}
<h2>Realized performance</h2>
{% if not realized %}<p class="muted">No labelled intervals yet.</p>{% else %}
<table><tr><th>interval</th><th>model</th><th>labelled / predicted</th><th>metrics</th><th>labels as of</th></tr>
{% for p in realized %}<tr><td>{{ p.interval_start | when }}</td><td>v{{ p.model_version }}</td>
<td class="num">{{ p.rows_labelled }} / {{ p.rows_predicted }}</td>
<td>{% for k, v in p.metrics | dictsort %}{{ k }}={{ v | number }} {% endfor %}</td><td>{{ p.labels_as_of | when }}</td></tr>{% endfor %}</table>{% endif %}
{% endif %}{% endblock %}"""


_NOTICE = """{% extends "layout" %}{% block body %}<p>{{ message }}</p>{% endblock %}"""


@functools.lru_cache(maxsize=1)
def _templates():
    from jinja2 import DictLoader, Environment, select_autoescape

    env = Environment(
        loader=DictLoader(
            {"layout": _LAYOUT, "reports": _REPORTS, "details": _DETAILS, "registry": _REGISTRY, "notice": _NOTICE}
        ),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["when"] = lambda value: "" if value is None else f"{_as_utc(value):%Y-%m-%d %H:%M} UTC"
    env.filters["number"] = lambda value: "-" if value is None else (f"{value:.4g}" if isinstance(value, float) else value)
    return env


def render(template: str, **context: Any) -> str:
    """One page as HTML; every value is escaped by Jinja's autoescape."""
    return _templates().get_template(template).render(**context)


def create_app():
    """The FastAPI app behind the plugin; every route requires an Airflow user allowed to see plugins."""
    import psycopg
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

    app = FastAPI(
        title="driftline",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(requires_access_view(AccessView.PLUGINS))],
    )

    def page(
        request: Request, template: str, title: str, config: DatasetConfig, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        # Links are absolute paths from the mount point (root_path also carries any [api] base_url path).
        base = request.scope.get("root_path", "").rstrip("/")
        body = render(template, title=title, config=config, base=base, **context)
        headers = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff"}
        return HTMLResponse(body, status_code=status_code, headers=headers)

    @app.exception_handler(psycopg.errors.UndefinedColumn)
    @app.exception_handler(psycopg.errors.UndefinedTable)
    def outdated_schema(request: Request, exc: psycopg.Error) -> HTMLResponse:
        # The pages only read: a schema made by an older driftline is upgraded by the next
        # score_batch run or `driftline init-db`, never from here.
        config = _config()
        message = (f"Schema {config.db_schema} predates this version of driftline ({exc.diag.message_primary}). "
                   "Run `driftline init-db`, or any score_batch run, to upgrade it.")
        return page(request, "notice", "Database schema out of date", config, status_code=503, message=message)

    def interval_of(report: str) -> tuple[datetime, datetime]:
        bounds = parse_report_id(report)
        if bounds is None:
            raise HTTPException(status_code=404, detail="no such report")
        return bounds

    # Handlers are plain `def`: FastAPI runs them in its thread pool, so blocking psycopg calls never
    # stall the API server's event loop.
    @app.get("/", include_in_schema=False)
    def index(request: Request) -> RedirectResponse:
        return RedirectResponse(request.scope.get("root_path", "").rstrip("/") + "/reports", status_code=307)

    @app.get("/reports", response_class=HTMLResponse)
    def reports(request: Request) -> HTMLResponse:
        config = _config()
        with _connect(config) as conn:
            rows = drift_reports(conn, config.db_schema)
        return page(request, "reports", "Drift reports", config, rows=rows)

    @app.get("/reports/{report}/details", response_class=HTMLResponse)
    def report_details(request: Request, report: str) -> HTMLResponse:
        start, end = interval_of(report)
        config = _config()
        with _connect(config) as conn:
            if stored_report_path(conn, config.db_schema, start, end) is None:
                raise HTTPException(status_code=404, detail="no such report")
            features = drifted_columns(conn, config.db_schema, start, end)
            summary = report_summary(conn, config, start, end)
        title = f"Drift of {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC"
        return page(request, "details", title, config, report_id=report, features=features, summary=summary)

    @app.get("/reports/{report}")
    def report_file(report: str) -> FileResponse:
        start, end = interval_of(report)
        config = _config()
        with _connect(config) as conn:
            stored = stored_report_path(conn, config.db_schema, start, end)
        path = None if stored is None or config.drift is None else safe_report_file(stored, config.drift.reports_dir)
        if path is None:
            raise HTTPException(status_code=404, detail="no such report")
        return FileResponse(
            path,
            media_type="text/html",
            headers={"Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/registry", response_class=HTMLResponse)
    def registry_page(request: Request) -> HTMLResponse:
        config = _config()
        with _connect(config) as conn:
            overview = registry_overview(conn, config.db_schema)
        metric_names = sorted({name for v in overview["versions"] for name in (v["metrics"] or {})})
        return page(request, "registry", "Model registry", config, metric_names=metric_names, **overview)

    return app
