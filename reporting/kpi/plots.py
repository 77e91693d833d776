"""Monthly KPI trend plots for the KPI report, from its JSON document (`reporting.kpi.report`).

Each function draws one matplotlib `Figure` on an Agg canvas of its own (no pyplot, no global
backend), with the KPI's target as a dashed line; `trend_images` returns them as inline
base64 PNGs (data URIs) for the self-contained HTML page.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLOURS = ("#1f5f99", "#d4781e", "#2e8b57", "#8e44ad")
TARGET_COLOUR = "#b03a2e"


def _figure(width: float = 6.4, height: float = 3.4) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _values(series: Sequence[Mapping[str, Any]], key: str = "value") -> np.ndarray:
    return np.array([np.nan if m[key] is None else m[key] for m in series], dtype=float)


def _prior_values(series: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.array(
        [np.nan if not m["prior"] or m["prior"]["value"] is None else m["prior"]["value"]
         for m in series], dtype=float,
    )  # fmt: skip


def _axes(fig: Figure, title: str, months: Sequence[str], percent_digits: int | None) -> Axes:
    from matplotlib.ticker import PercentFormatter

    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_xticks(range(len(months)), months, rotation=45 if len(months) > 6 else 0, fontsize=8)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=percent_digits))
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def _line(ax: Axes, values: np.ndarray, label: str, colour: str, **style: Any) -> None:
    x = np.arange(len(values))
    ax.plot(x, values, marker="o", markersize=4, label=label, color=colour, **style)


def share_figure(
    doc: Mapping[str, Any], names: Sequence[str], title: str, labels: Mapping[str, str]
) -> Figure:
    """Monthly values of share KPIs (completion, SLA compliance, satisfaction) and targets."""
    months = [m["month"] for m in doc["period"]["months"]]
    fig = _figure()
    ax = _axes(fig, title, months, None)
    targets = []
    for colour, name in zip(COLOURS, names, strict=False):
        _line(ax, _values(doc["monthly"][name]), labels[name], colour)
        target = doc["kpis"][name]["target"]
        if target is not None and target not in targets:
            targets.append(target)
            ax.axhline(target, color=TARGET_COLOUR, linestyle="--", linewidth=1)
            ax.annotate(f"target {target:.0%}", (0, target), xytext=(2, 3),
                        textcoords="offset points", color=TARGET_COLOUR, fontsize=8)  # fmt: skip
    low = np.nanmin([*targets, *(np.nanmin(_values(doc["monthly"][n]), initial=1) for n in names)])
    ax.set_ylim(max(0.0, low - 0.05), 1.005)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def rate_figure(doc: Mapping[str, Any], name: str, title: str) -> Figure:
    """A monthly rate, the prior period's months (when compared month by month) and the target:
    the prior period's rate with the configured change applied."""
    months = [m["month"] for m in doc["period"]["months"]]
    series = doc["monthly"][name]
    fig = _figure()
    ax = _axes(fig, title, months, 1)
    _line(ax, _values(series), "this period", COLOURS[0])
    prior = _prior_values(series)
    if not np.isnan(prior).all():
        _line(ax, prior, "same month, prior period", "#999999", linestyle=":")
    kpi = doc["kpis"][name]
    if kpi["prior"] and kpi["prior"]["value"] is not None:
        level = kpi["prior"]["value"] * (1 + kpi["target"])
        ax.axhline(level, color=TARGET_COLOUR, linestyle="--", linewidth=1)
        ax.annotate(f"target: prior {kpi['target']:+.0%} = {level:.2%}", (0, level),
                    xytext=(2, 3), textcoords="offset points", color=TARGET_COLOUR,
                    fontsize=8)  # fmt: skip
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def data_uri(fig: Figure) -> str:
    """The figure as a base64 PNG data URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def trend_images(doc: Mapping[str, Any], labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """(title, data URI) of each trend plot: callback completion (and list completion when
    there are lists), complaint SLA compliance, complaint rate, churn rate, satisfaction."""
    completion = ["callback_completion"]
    if doc["lists"]["available"]:
        completion.append("list_completion")
    figures = [
        ("Callback completion", share_figure(doc, completion, "Callback completion", labels)),
        ("Complaint SLA compliance", share_figure(
            doc, ["complaint_first_response", "complaint_resolution"],
            "Complaint SLA compliance", labels)),
        ("Complaint rate", rate_figure(doc, "complaint_rate", "Complaint rate (monthly)")),
        ("Churn rate", rate_figure(doc, "churn_rate", "Churn rate (monthly)")),
        ("Satisfaction", share_figure(doc, ["satisfaction"], "Satisfied surveys", labels)),
    ]  # fmt: skip
    return [(title, data_uri(fig)) for title, fig in figures]
