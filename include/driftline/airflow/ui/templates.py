"""The UI pages' Jinja templates and `render` (every value escaped by autoescape)."""

from __future__ import annotations

import functools
from typing import Any

from driftline.airflow.ui import conclusions, numbers
from driftline.airflow.ui.report_files import as_utc

# P-value methods flag drift below the threshold; the others (distances) at or above it.
from driftline.drift.summary import statistic_kind

_LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} · driftline</title>
<style>
 body{font-family:system-ui,sans-serif;margin:1.2rem;color:#1a202c}
 nav a{margin-right:1rem} h1{font-size:1.3rem} h2{font-size:1.1rem;margin-top:1.6rem}
 table{border-collapse:collapse;font-size:.88rem} th,td{border-bottom:1px solid #e2e8f0;padding:.3rem .6rem;text-align:left;vertical-align:top}
 th{background:#f7fafc} td.num{text-align:right;font-variant-numeric:tabular-nums}
 .charts{display:flex;flex-wrap:wrap;gap:.8rem} svg.chart{background:#fff;border:1px solid #e2e8f0} h3{font-size:1rem}
 .yes{color:#c53030;font-weight:600} .waiting{color:#b7791f;font-weight:600}
 .conclusion{border-left:4px solid #4a5568;background:#f7fafc;padding:.5rem .8rem;margin:.8rem 0} .no{color:#2f855a} .muted{color:#718096} .tag{background:#ebf8ff;border-radius:4px;padding:0 .3rem}
</style></head><body>
<nav><a href="{{ base }}/">Datasets</a>{% if config %}
<a href="{{ home }}/reports">Drift reports</a><a href="{{ home }}/trends">Trends</a><a href="{{ home }}/registry">Model registry</a>
<span class="muted">dataset {{ config.name }} · schema {{ config.db_schema }}</span>{% endif %}</nav>
<h1>{{ title }}</h1>
{% block body %}{% endblock %}
</body></html>"""

_REPORTS = """{% extends "layout" %}{% block body %}
{% if not rows %}<p>No drift reports yet: they appear when <code>monitor_drift</code> has run for an interval.</p>
{% else %}{% set newest = rows[0] %}<p class="conclusion">Newest interval {{ newest.interval_start | when }}:
<span class="{{ 'yes' if newest.trigger else 'no' }}">{{ 'retrain triggered' if newest.trigger else 'no retrain' }}</span>
({{ 'breach' if newest.breach else 'no breach' }}). {{ rows | selectattr("breach") | list | length | integer }} of {{ rows | length | integer }} intervals below breached.</p>
<table><tr><th>interval</th><th>decision</th><th>breach</th><th>drifted share</th><th>prediction drift</th>
<th>drifted features</th><th>sampled rows</th><th>model</th><th>run</th><th>report</th></tr>
{% for r in rows %}<tr>
<td>{{ r.interval_start | when }} → {{ r.interval_end | when }}</td>
<td>{% if r.trigger %}<span class="yes">retrain</span>{% if r.retrain_run_id %} <span class="muted">{{ r.retrain_run_id }}</span>{% endif %}{% else %}none{% endif %}
<div class="muted">{{ r.reason or '' }}</div></td>
<td class="{{ 'yes' if r.breach else 'no' }}">{{ 'yes' if r.breach else 'no' }}</td>
<td class="num">{{ r.drifted_share | metric }}</td>
<td class="num">{{ r.prediction_drift | metric }} <span class="muted">{{ r.prediction_method }}</span></td>
<td class="num">{{ r.counted_features | integer }} counted, {{ r.drifted_features | integer }} flagged of {{ r.features | integer }}</td>
<td class="num">{{ r.current_rows | integer }} / {{ r.rows_scored | integer }}</td>
<td>v{{ r.model_version }}</td>
<td class="muted">{{ r.run_id }}</td>
<td><a href="{{ home }}/reports/{{ r.report_id }}/details">details</a> · <a href="{{ home }}/reports/{{ r.report_id }}" target="_blank" rel="noopener">open HTML</a></td>
</tr>{% endfor %}</table>{% endif %}
{% endblock %}"""

# Conclusion first: the decision, then the evidence (what was compared, the thresholds), then the one
# feature table. The Evidently file keeps its own summary block (drift/summary.py) for readers of the file.
_DETAILS = """{% extends "layout" %}{% block body %}
<p><a href="{{ home }}/reports">← all reports of {{ config.name }}</a> · <a href="{{ home }}/reports/{{ report_id }}" target="_blank" rel="noopener">open the Evidently report</a></p>
{% if summary %}{% set d = summary | decision %}
<section class="conclusion" id="decision"><h2>Decision: <span class="{{ d.css }}">{{ d.headline }}</span></h2><p>{{ d.reason }}</p></section>
<h2>Evidence</h2>
<table id="evidence">
<tr><th>drifted share</th><td class="num">{{ summary.drifted_share | metric }}</td><td>{{ summary.counted_features | integer }} of {{ summary.features | integer }} features counted; Evidently flagged {{ summary.drifted_features | integer }}</td></tr>
<tr><th>prediction drift</th><td class="num">{{ summary.prediction_drift | metric }}</td><td>{{ summary.prediction_method }} {{ summary.prediction_method | statistic_kind }} on the model score</td></tr>
{% if policy %}<tr><th>thresholds</th><td></td><td>breach when drifted share >= {{ policy.drifted_share | metric }} or prediction drift >= {{ policy.prediction_drift | metric }};
a flagged feature counts when its effect size >= {{ policy.effect_size_floor | metric }}; retrain when {{ policy.breaches }} of the last {{ policy.window }}
intervals breach, not within {{ policy.cooldown_hours | metric(1) }} h of the last retrain</td></tr>{% endif %}
<tr><th>model</th><td>v{{ summary.model_version }}</td><td>{% set w = summary.training_window or {} %}reference: {% if w.start and w.end %}training window {{ w.start }} to {{ w.end }}{% else %}training rows{% endif %}, {{ summary.reference_rows | integer }} rows sampled</td></tr>
<tr><th>current</th><td class="num">{{ summary.current_rows | integer }}</td><td>rows sampled of {{ summary.rows_scored | integer }} scored</td></tr>
</table>{% endif %}
<h2>Features</h2>
<table id="features"><tr><th>feature</th><th>counted</th><th>flagged</th><th>type</th><th>method</th><th>statistic is</th><th>statistic</th><th>threshold</th><th>effect size</th><th>why</th></tr>
{% for f in features %}<tr><td>{{ f.column_name }}</td><td class="{{ 'yes' if f.counted else 'no' }}">{{ 'yes' if f.counted else 'no' }}</td>
<td class="{{ 'yes' if f.drifted else 'no' }}">{{ 'yes' if f.drifted else 'no' }}</td><td>{{ f.column_type }}</td><td>{{ f.method }}</td>
<td>{{ f.method | statistic_kind }}</td><td class="num">{{ f.statistic | metric }}</td><td class="num">{{ f.threshold | metric }}</td>
<td class="num">{{ f.effect_size | metric }}</td><td class="muted">{{ f | why(policy.effect_size_floor if policy else none) }}</td></tr>
{% endfor %}</table>
<p class="muted">p-value: drift when below the threshold (0 is the strongest drift); distance: drift when at or above it.</p>
{% endblock %}"""

_REGISTRY = """{% extends "layout" %}{% block body %}
{% if not versions %}<p>No model registered yet: run <code>driftline train</code> or <code>retrain_model</code>.</p>{% else %}
{% set champions = versions | selectattr("status", "equalto", "champion") | list %}
<section class="conclusion" id="state"><p>Champion: {% if champions %}<strong>v{{ champions[0].version }}</strong>{% else %}<span class="yes">none</span>{% endif %}.
{% if waiting %}{% for e in waiting %}<br><span class="waiting">Candidate v{{ e.candidate_version }} {{ e.state }}</span>
<span class="muted">(evaluation {{ e.evaluation_id }}{% if e.run_id %}, retrain_model run {{ e.run_id }}{% endif %}{% if config.retraining.promotion == "manual" %}: approve or reject it in that run's approve_promotion task{% endif %})</span>{% endfor %}
{% else %}No candidate is waiting for a decision.{% endif %}</p></section>
<h2>Versions</h2>{% set waiting_versions = waiting | map(attribute="candidate_version") | list %}
{% set shared = shared or {} %}{% set primary = config.retraining.metric %}
<table><tr><th>version</th><th>status</th><th>aliases</th>{% for m in metric_names %}<th>{{ m }}<br><span class="muted">own holdout</span></th>{% endfor %}
<th>{{ primary }}<br><span class="muted">shared holdout at promotion</span></th><th>sha256</th><th>created</th></tr>
{% for v in versions %}{% set at = shared.get(v.version) %}<tr><td>v{{ v.version }}</td><td>{{ v.status }}{% if v.version in waiting_versions %} <span class="waiting">waiting for {{ 'approval' if config.retraining.promotion == 'manual' else 'promotion' }}</span>{% endif %}{% if v.pruned_at %} <span class="muted">(pruned)</span>{% endif %}</td>
<td>{% for a in v.aliases %}<span class="tag">{{ a }}</span> {% endfor %}</td>
{% for m in metric_names %}<td class="num">{{ v.metrics.get(m) | number }}</td>{% endfor %}
<td class="num">{% if at %}{{ at.metrics.get(primary) | number }} <span class="muted">vs v{{ at.champion_version }} {{ at.champion_metrics.get(primary) | number }}, {{ at.rows | integer }} rows, evaluation {{ at.evaluation_id }}</span>{% else %}-{% endif %}</td>
<td class="muted">{{ v.sha256[:12] }}</td><td>{{ v.created_at | when }}</td></tr>{% endfor %}</table>
<p class="muted">Own holdout: the newest rows of each version's own training window (different rows per version, not comparable).
Shared holdout at promotion: the rows neither the version nor the champion it replaced trained on, both scored on them
(evaluation below); "-" when it became champion without one (<code>driftline train</code>).</p>
{% if importance %}<h2>Champion v{{ importance.version }}: global feature importance</h2>
<table><tr><th>feature</th><th>total split gain</th><th>share</th></tr>
{% for f in importance.features %}<tr><td>{{ f.feature }}</td><td class="num">{{ f.gain | number }}</td>
<td class="num">{{ f.share | percent }}</td></tr>{% endfor %}</table>
<p class="muted">LightGBM gain importance read from the champion's model text: how much each feature reduced the training loss.
Per-row reasons (TreeSHAP, [explain] in the config) are in the <code>prediction_reasons</code> view; attribution drift per
interval in <code>drift_summary.attribution_ndcg</code>.</p>{% endif %}
<h2>Evaluations</h2>
{% if not evaluations %}<p class="muted">No candidate evaluated yet.</p>{% else %}
<table><tr><th>#</th><th>when</th><th>candidate</th><th>champion</th><th>shared holdout</th><th>why these rows</th><th>verdict</th><th>run</th></tr>
{% for e in evaluations %}<tr><td>{{ e.evaluation_id }}</td><td>{{ e.evaluated_at | when }}</td><td>v{{ e.candidate_version }}</td>
<td>{% if e.champion_version %}v{{ e.champion_version }}{% else %}-{% endif %}</td>
<td class="num">{{ e.holdout_rows | integer }} rows{% if e.holdout_start %} {{ e.holdout_start | when }} → {{ e.holdout_end | when }}{% endif %}</td>
<td>{{ e.holdout_reason }}</td>
<td class="{{ e.css }}">{{ e.state }}{% for f in e.failures %}<div class="muted">{{ f }}</div>{% endfor %}</td>
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
<td class="num">{{ p.rows_labelled | integer }} / {{ p.rows_predicted | integer }}</td>
<td>{% for k, v in p.metrics | dictsort %}{{ k }}={{ v | metric }} {% endfor %}</td><td>{{ p.labels_as_of | when }}</td></tr>{% endfor %}</table>{% endif %}
{% endif %}{% endblock %}"""


_DATASETS = """{% extends "layout" %}{% block body %}
{% if not loaded %}<p>No dataset config loads: see below, and the configs folder ($DRIFTLINE_CONFIGS).</p>{% else %}
<table><tr><th>dataset</th><th>task</th><th>schema</th><th>schedule</th><th>pages</th><th>DAGs</th><th>config file</th></tr>
{% for path, c in loaded %}<tr><td>{{ c.name }}</td><td>{{ c.task }}</td><td>{{ c.db_schema }}</td><td>{{ c.cron }} {{ c.timezone }}</td>
<td><a href="{{ base }}/{{ c.name }}/reports">drift reports</a> · <a href="{{ base }}/{{ c.name }}/trends">trends</a> · <a href="{{ base }}/{{ c.name }}/registry">model registry</a></td>
<td class="muted">{{ dag_ids[c.name] | join(", ") }}</td>
<td class="muted">{{ path }}</td></tr>{% endfor %}</table>{% endif %}
{% if broken %}<h2>Configs that did not load</h2>
<p class="muted">Their DAGs are not built (the Airflow UI shows the same errors as an import error of dags/dataset_configs.py); the other datasets run.</p>
<table><tr><th>config file</th><th>error</th></tr>
{% for path, error in broken %}<tr><td>{{ path }}</td><td class="yes">{{ error }}</td></tr>{% endfor %}</table>{% endif %}
{% endblock %}"""

# The charts are SVG markup built by charts.svg, which escapes every text it places: `| safe` here.
_TRENDS = """{% extends "layout" %}{% block body %}
{% if not intervals %}<p>Nothing to chart yet: the trends appear when <code>monitor_drift</code> has run for an interval.</p>{% else %}
<p class="muted">{{ intervals }} intervals, oldest first. Dashed lines: the trigger thresholds of <code>[drift.trigger]</code>.</p>
<h2>Drift</h2>
{% if drift_charts %}<div class="charts">{% for c in drift_charts %}{{ c | safe }}{% endfor %}</div>{% else %}<p class="muted">No monitored interval yet.</p>{% endif %}
<h2>Estimated vs realized performance</h2>
{% if performance_charts %}<div class="charts">{% for c in performance_charts %}{{ c | safe }}{% endfor %}</div>
<p class="muted">The estimate (CBPE, from the scores alone) with its 95% band: where the realized metric of the same rows should
fall when the champion's calibration still holds. The realized line appears as labels arrive. A realized value outside the
band, or a widening gap, means the calibration no longer holds (concept shift, which no estimate without labels can see).</p>
{% else %}<p class="muted">No estimate yet (binary models with a calibration, from <code>estimate_performance</code>).</p>{% endif %}
{% if segments is not none %}<h2>Per segment: {{ segment_metric }}</h2>
{% if not segments %}<p class="muted">No segment rows yet.</p>{% endif %}
{% for s in segments %}<h3>{{ s.column }}</h3><div class="charts">{% for c in s.charts %}{{ c | safe }}{% endfor %}</div>{% endfor %}{% endif %}
{% endif %}{% endblock %}"""

_NOTICE = """{% extends "layout" %}{% block body %}<p>{{ message }}</p>{% endblock %}"""


@functools.lru_cache(maxsize=1)
def _templates():
    from jinja2 import DictLoader, Environment, select_autoescape

    env = Environment(
        loader=DictLoader(
            {
                "layout": _LAYOUT,
                "datasets": _DATASETS,
                "reports": _REPORTS,
                "details": _DETAILS,
                "registry": _REGISTRY,
                "trends": _TRENDS,
                "notice": _NOTICE,
            }
        ),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["when"] = lambda value: "" if value is None else f"{as_utc(value):%Y-%m-%d %H:%M} UTC"
    env.filters.update(
        number=numbers.number,
        integer=numbers.count,
        metric=numbers.metric,
        percent=numbers.percent,
        decision=conclusions.drift_decision,
        why=conclusions.feature_why,
        statistic_kind=statistic_kind,
    )
    return env


def render(template: str, **context: Any) -> str:
    """One page as HTML; every value is escaped by Jinja's autoescape."""
    return _templates().get_template(template).render(**context)
