"""Writing the KPI report: `kpi.json` for other systems and `kpi.html` for people.

`write_kpi_report(report, out_dir, monitoring_file=None)` writes both files atomically into
`out_dir` (the CLI uses `<workspace>/<paths.reports>/kpi/<from>_<to>/`) and returns their paths.
The HTML page is self-contained: inline CSS, plots as base64 PNGs (`reporting.kpi.plots`), no
external URL. Neither file holds a customer id, name or phone number: counts by group only.

kpi.json (schema "keepwell.kpi/1"; keys always present, values null when unknown, never NaN):

* `schema`, `generated_at` (UTC, ISO 8601).
* `period`: `from`, `to` (exclusive dates), `months`: [{`month` "YYYY-MM", `from`, `to`}].
* `prior_period`: null ("no prior period": the data begin after it would) or {`from`, `to`,
  `month_by_month`: whether each month is also compared with the same month of the prior
  period (periods of whole months)}.
* `data`: `from`, `to`: the first event and the last recorded moment of the data.
* `targets`: the configured `kpi.targets` (a share for completion, SLA and satisfaction; a
  relative change for `complaint_rate` and `churn_rate`; `satisfied_from` a survey score).
* `kpis`: {metric: Metric} for the whole period; metrics are `reporting.kpi.model.METRICS`:
  callback_completion, list_completion, complaint_first_response, complaint_resolution,
  complaint_rate, churn_rate, satisfaction (definitions in `reporting.kpi.compute`).
* Metric: {`numerator`, `denominator` (ints), `value` (numerator / denominator or null),
  `target`, `met` (bool or null), `excluded` (left out as still pending at the data's end),
  `prior` (rates: {`numerator`, `denominator`, `value`} of the prior period or month, else
  null), `change` (rates: (value - prior) / prior, else null)}. A rate is met when change <=
  target; any other metric when value >= target.
* `monthly`: {metric: [Metric + `month`]}, one entry per month of `period.months`.
* `breakdowns`: {`branch` | `rm` | `segment`: [{`group`, (`rm` only) `branch_id`, `kpis`:
  {metric: Metric}, `monthly`: {metric: [Metric + `month`]}}]}, groups with any count, sorted.
* `lists`: {`available` (daily lists found for the period), `list_dates`, `tasks`}.
* `monitoring`: the `summary` of `<workspace>/<paths.reports>/monitoring.json` when that file
  exists (written by the monitoring job), else null.
* `notes`: plain sentences: data range, prior period, exclusions, missing lists.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keepwell.io import write_text
from reporting.kpi.model import METRICS, RATES
from reporting.kpi.plots import trend_images

if TYPE_CHECKING:
    from reporting.kpi.model import KpiReport

LABELS = {
    "callback_completion": "Callback completion",
    "list_completion": "List completion (RM page)",
    "complaint_first_response": "Complaint first response in time",
    "complaint_resolution": "Complaint resolved in time",
    "complaint_rate": "Complaint rate",
    "churn_rate": "Churn rate",
    "satisfaction": "Satisfaction",
}
DESCRIPTIONS = {
    "callback_completion": "policy callbacks due, held-out ones excluded, that were made "
    "(reached or declined)",
    "list_completion": "tasks on the RM's daily list whose latest outcome is reached or declined"
    " (a task listed again until done counts once)",
    "complaint_first_response": "complaints opened answered within the first-response hours",
    "complaint_resolution": "complaints opened resolved within the working-day deadline",
    "complaint_rate": "customers with a complaint per customer active at the month's start; "
    "target: change against the prior period",
    "churn_rate": "active customers whose relationship closed in the month; target: change "
    "against the prior period",
    "satisfaction": "surveys scoring satisfied or better",
}
TOP_RMS = 20
PRETTY_JSON_MAX_GROUPS = 200  # more groups than this: compact JSON (it is for machines)


def load_monitoring_summary(path: Path) -> tuple[Any, str | None]:
    """The hook for the monitoring job's report: (`summary` of `path`, None) when the file
    exists, (None, None) when it does not, (None, a note) when it cannot be read."""
    if not path.exists():
        return None, None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("summary"), None
    except (OSError, ValueError, AttributeError) as exc:
        return None, f"{path.name} could not be read ({type(exc).__name__}); section left out."


def report_document(report: KpiReport, monitoring_file: Path | None = None) -> dict[str, Any]:
    """The kpi.json document (schema in the module docstring)."""
    doc = report.to_dict()
    summary, problem = (None, None) if monitoring_file is None else load_monitoring_summary(
        monitoring_file)  # fmt: skip
    notes = doc.pop("notes") + ([problem] if problem else [])
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"schema": doc.pop("schema"), "generated_at": now, **doc, "monitoring": summary,
            "notes": notes}  # fmt: skip


def write_kpi_report(
    report: KpiReport, out_dir: Path | str, *, monitoring_file: Path | None = None
) -> tuple[Path, Path]:
    """Write `kpi.json` and `kpi.html` into `out_dir`, each atomically; (html path, json path).
    `monitoring_file`: the optional monitoring report whose `summary` gets its own section."""
    out_dir = Path(out_dir)
    doc = report_document(report, monitoring_file)
    groups = sum(len(v) for v in doc["breakdowns"].values())
    indent = 2 if groups <= PRETTY_JSON_MAX_GROUPS else None
    json_path, html_path = out_dir / "kpi.json", out_dir / "kpi.html"
    write_text(json_path, json.dumps(doc, indent=indent, allow_nan=False) + "\n")
    write_text(html_path, render_html(doc))
    return html_path, json_path


# -- HTML ------------------------------------------------------------------------------------
def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}%}"


def _status(met: bool | None) -> tuple[str, str]:
    return {True: ("met", "MET"), False: ("missed", "MISSED")}.get(met, ("na", "n/a"))


def _target_text(name: str, target: float | None) -> str:
    if target is None:
        return "–"
    return f"change ≤ {target:+.0%}" if name in RATES else f"≥ {target:.0%}"


def _cell(name: str, metric: Mapping[str, Any]) -> dict[str, Any]:
    """A table cell: the value (a rate with its change), its status class and a tooltip."""
    css, _ = _status(metric["met"])
    text = _pct(metric["value"], 2 if name in RATES else 1)
    if name in RATES and metric["change"] is not None:
        text += f" ({metric['change']:+.0%})"
    title = f"{metric['numerator']:,} / {metric['denominator']:,}"
    return {"text": text, "css": css, "title": title}


def _headline(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in METRICS:
        m = doc["kpis"][name]
        css, word = _status(m["met"])
        prior = m["prior"]
        rows.append({
            "label": LABELS[name], "description": DESCRIPTIONS[name],
            "value": _pct(m["value"], 2 if name in RATES else 1),
            "target": _target_text(name, m["target"]), "css": css, "status": word,
            "counts": f"{m['numerator']:,} / {m['denominator']:,}",
            "prior": "–" if prior is None else _pct(prior["value"], 2),
            "change": "–" if m["change"] is None else f"{m['change']:+.1%}",
            "excluded": f"{m['excluded']:,}" if m["excluded"] else "",
        })  # fmt: skip
    return rows


def _group_rows(groups: list[Mapping[str, Any]], metrics: list[str]) -> list[dict[str, Any]]:
    return [{"group": g["group"], "branch_id": g.get("branch_id") or "",
             "missed": sum(g["kpis"][n]["met"] is False for n in metrics),
             "cells": [_cell(n, g["kpis"][n]) for n in metrics]} for g in groups]  # fmt: skip


def _worst_first(rows: list[dict[str, Any]], groups: list[Mapping[str, Any]]) -> list[dict]:
    """RMs with the most missed targets first, then the lowest callback completion."""
    completion = {g["group"]: g["kpis"]["callback_completion"]["value"] for g in groups}

    def key(row: dict[str, Any]) -> tuple:
        value = completion[row["group"]]
        return (-row["missed"], 2.0 if value is None else value, row["group"])

    return sorted(rows, key=key)


def _summary_items(summary: Any) -> list[tuple[str, str]]:
    if isinstance(summary, Mapping):
        return [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in summary.items()]
    if isinstance(summary, list):
        return [("", s if isinstance(s, str) else json.dumps(s)) for s in summary]
    return [("", str(summary))]


def render_html(doc: Mapping[str, Any]) -> str:
    """The self-contained HTML page of a kpi.json document."""
    import jinja2

    metrics = [n for n in METRICS if n != "list_completion" or doc["lists"]["available"]]
    breakdowns = doc["breakdowns"]
    rms = _worst_first(_group_rows(breakdowns["rm"], metrics), breakdowns["rm"])
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE).render(
        doc=doc, headline=_headline(doc), metrics=metrics, labels=LABELS,
        plots=trend_images(doc, LABELS),
        branches=_group_rows(breakdowns["branch"], metrics),
        segments=_group_rows(breakdowns["segment"], metrics),
        rms=rms[:TOP_RMS], rm_count=len(rms), rms_missing=sum(r["missed"] > 0 for r in rms),
        monitoring=None if doc["monitoring"] is None else _summary_items(doc["monitoring"]),
    )  # fmt: skip


TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Keepwell KPI report {{ doc.period["from"] }} to {{ doc.period["to"] }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto;
       max-width: 72rem; padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; margin: 0.5rem 0; }
th, td { padding: 0.3rem 0.5rem; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
th { background: #f4f6f8; }
.met { color: #1e7b34; } .missed { color: #b03a2e; font-weight: 600; } .na { color: #888; }
td.status.met { background: #e6f4ea; } td.status.missed { background: #fbe9e7; }
.badge { font-weight: 700; letter-spacing: 0.03em; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(28rem, 1fr)); gap: 1rem; }
.plots img { width: 100%; height: auto; border: 1px solid #eee; }
.meta, .small { color: #555; font-size: 0.85rem; }
</style></head><body>
<h1>KPI report: {{ doc.period["from"] }} to {{ doc.period["to"] }} (exclusive)</h1>
<p class="meta">Data {{ doc.data["from"] }} to {{ doc.data["to"] }} ·
{% if doc.prior_period %}prior period {{ doc.prior_period["from"] }} to {{ doc.prior_period["to"] }}
{% else %}no prior period{% endif %} · generated {{ doc.generated_at }}</p>

<h2>Headline: KPIs against targets</h2>
<table><thead><tr><th>KPI</th><th>value</th><th>target</th><th>status</th>
<th>numerator / denominator</th><th>prior period</th><th>change</th><th>excluded</th></tr></thead>
<tbody>{% for r in headline %}<tr>
<td title="{{ r.description }}">{{ r.label }}<br><span class="small">{{ r.description }}</span></td>
<td>{{ r.value }}</td><td>{{ r.target }}</td>
<td class="status {{ r.css }}"><span class="badge {{ r.css }}">{{ r.status }}</span></td>
<td>{{ r.counts }}</td><td>{{ r.prior }}</td><td>{{ r.change }}</td><td>{{ r.excluded }}</td>
</tr>{% endfor %}</tbody></table>
{% if not doc.lists.available %}<p class="small">No daily lists for this period: list
completion (tasks recorded on the RM page) is not available.</p>{% endif %}

<h2>Monthly trends</h2>
<div class="plots">{% for title, uri in plots %}<img alt="{{ title }}" src="{{ uri }}">
{% endfor %}</div>

{% macro group_table(rows, first, with_branch) %}
<table><thead><tr><th>{{ first }}</th>{% if with_branch %}<th>branch</th>{% endif %}
<th>targets missed</th>{% for n in metrics %}<th>{{ labels[n] }}</th>{% endfor %}</tr></thead>
<tbody>{% for r in rows %}<tr><td>{{ r.group }}</td>
{% if with_branch %}<td class="text">{{ r.branch_id }}</td>{% endif %}<td>{{ r.missed }}</td>
{% for c in r.cells %}<td class="{{ c.css }}" title="{{ c.title }}">{{ c.text }}</td>{% endfor %}
</tr>{% endfor %}</tbody></table>
{% endmacro %}
<h2>By branch</h2>
{{ group_table(branches, "branch", false) }}
<h2>By segment</h2>
{{ group_table(segments, "segment", false) }}
<h2>Relationship managers, worst first</h2>
<p class="small">{{ rms_missing }} of {{ rm_count }} RMs miss at least one target; the
{{ rms|length }} worst are shown (most targets missed, then lowest callback completion). Every RM
is in kpi.json. Rates show the change against the prior period in brackets.</p>
{{ group_table(rms, "RM", true) }}

{% if monitoring is not none %}
<h2>Model monitoring</h2>
<table><tbody>{% for k, v in monitoring %}<tr><td class="text">{{ k }}</td>
<td class="text">{{ v }}</td></tr>{% endfor %}</tbody></table>
{% endif %}

<h2>Notes</h2>
<ul>{% for n in doc.notes %}<li>{{ n }}</li>{% endfor %}</ul>
<p class="small">Targets: {% for k, v in doc.targets.items() %}{{ k }} {{ v }}{% if not loop.last
%}, {% endif %}{% endfor %}. Definitions: reporting/kpi/compute.py; the JSON schema:
reporting/kpi/report.py.
</p>
</body></html>
"""
