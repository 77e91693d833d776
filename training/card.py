"""The model card: one markdown page per target that a risk committee can read and challenge.

It says what the model is for and not for, which data it learned from (the time split, rows and
base rates), how it scores on the held-out test period against the logistic baseline, the seed
rule and, on the demo bank, the simulator's true probabilities (the oracle), per segment and for
the customers who need special care, what the chosen tree shape cost in accuracy to keep
explanations affordable, how scores are calibrated, which attributes are never given as a reason,
and its limits. Every number comes from the arguments; a missing one renders as "-".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keepwell.config import Config
    from training.fitted import FittedModel

MISSING = "-"
BASELINES: tuple[tuple[str, str], ...] = (
    ("model", "LightGBM (this model)"),
    ("logistic", "logistic regression"),
    ("seed_rule", "seed rule (transactions down or complaints up)"),
    ("oracle", "oracle (simulator's true probability)"),
)
# (key, header, format); formats are applied to floats, counts get thousands separators
METRICS: tuple[tuple[str, str, str], ...] = (
    ("roc_auc", "ROC-AUC", ".3f"),
    ("pr_auc", "PR-AUC", ".3f"),
    ("brier", "Brier", ".4f"),
    ("ece", "ECE", ".4f"),
    ("lift_top_5pct", "lift@5%", ".2f"),
    ("capture_top_10pct", "capture@10%", ".1%"),
    ("capture_at_capacity", "capture@capacity", ".1%"),
)
COUNTS: tuple[tuple[str, str, str], ...] = (
    ("rows", "rows", ",d"),
    ("positives", "positives", ",d"),
    ("base_rate", "base rate", ".2%"),
)
FEW_POSITIVES = 50  # below this, a group's metrics are flagged as uncertain


def fmt(value: Any, spec: str = "") -> str:
    """`value` formatted with `spec`, or "-" when it is missing (None, NaN) or not a number
    the spec can format."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if spec.endswith("d"):
        try:
            return format(int(value), spec)
        except (TypeError, ValueError):
            return MISSING
    if spec:
        try:
            return format(float(value), spec)
        except (TypeError, ValueError):
            return MISSING
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_table(evaluation: Mapping[str, Any]) -> str:
    """Model vs baselines on the test period: one row per scorer present in `evaluation`."""
    headers = ["scorer", *(h for _, h, _ in METRICS), *(h for _, h, _ in COUNTS)]
    rows = []
    for key, label in BASELINES:
        m = evaluation.get(key)
        if not m:
            continue
        rows.append(
            [label]
            + [fmt(m.get(k), f) for k, _, f in METRICS]
            + [fmt(m.get(k), f) for k, _, f in COUNTS]
        )
    return table(headers, rows)


def groups_table(by_group: Mapping[str, Mapping[str, Any]]) -> str:
    """Per segment / special-care group: model and logistic ROC-AUC, PR-AUC, ECE, capture and the
    counts behind them, with groups of fewer than FEW_POSITIVES positives flagged."""
    headers = ["group", "scorer", "ROC-AUC", "PR-AUC", "ECE", "capture@10%", "rows",
               "positives", "base rate", "note"]  # fmt: skip
    rows = []
    for group, scorers in by_group.items():
        for key, label in BASELINES:
            m = scorers.get(key)
            if not m:
                continue
            positives = m.get("positives")
            few = isinstance(positives, int | float) and positives < FEW_POSITIVES
            rows.append([
                str(group), label.split(" (")[0], fmt(m.get("roc_auc"), ".3f"),
                fmt(m.get("pr_auc"), ".3f"), fmt(m.get("ece"), ".4f"),
                fmt(m.get("capture_top_10pct"), ".1%"), fmt(m.get("rows"), ",d"),
                fmt(positives, ",d"), fmt(m.get("base_rate"), ".2%"),
                "few positives: uncertain" if few else "",
            ])  # fmt: skip
    return table(headers, rows) if rows else "No per-group results were given."


def shapes_section(shapes: Sequence[Mapping[str, Any]], config: Config) -> str:
    """The candidate tree shapes with their speed and validation accuracy, and what the chosen
    one cost against the most accurate candidate."""
    budget = config.training.explain_budget
    intro = (
        f"Explanations (TreeSHAP, LightGBM `pred_contrib`) cost far more than predictions, so the "
        f"tree shape is chosen to explain {budget.customers:,} customers within "
        f"{budget.seconds:,.0f} s on {budget.cores} core(s) while staying within "
        f"{budget.auc_tolerance} validation ROC-AUC of the most accurate candidate."
    )
    if not shapes:
        return intro + "\n\nNo shape comparison was given."
    headers = ["num_leaves", "max_depth", "min_child_samples", "trees", "valid ROC-AUC",
               "predict us/row", "explain us/row", "projected explain s", "chosen"]  # fmt: skip
    rows = [[
        fmt(s.get("num_leaves"), "d"), fmt(s.get("max_depth"), "d"),
        fmt(s.get("min_child_samples"), ",d"), fmt(s.get("trees"), ",d"),
        fmt(s.get("valid_roc_auc"), ".4f"), fmt(s.get("predict_us_per_row"), ",.1f"),
        fmt(s.get("explain_us_per_row"), ",.1f"), fmt(s.get("projected_explain_seconds"), ",.1f"),
        "yes" if s.get("chosen") else "",
    ] for s in shapes]  # fmt: skip
    return intro + "\n\n" + table(headers, rows) + "\n\n" + _trade_off(shapes)


def _trade_off(shapes: Sequence[Mapping[str, Any]]) -> str:
    chosen = next((s for s in shapes if s.get("chosen")), None)
    scored = [s for s in shapes if _number(s.get("valid_roc_auc"))]
    if chosen is None or not scored or not _number(chosen.get("valid_roc_auc")):
        return "**What the trade-off cost:** - (no chosen shape with a validation ROC-AUC)."
    best = max(scored, key=lambda s: float(s["valid_roc_auc"]))
    cost = float(best["valid_roc_auc"]) - float(chosen["valid_roc_auc"])
    if best is chosen or cost <= 0:
        return (
            "**What the trade-off cost:** nothing: the chosen shape is also the most accurate "
            f"on validation (ROC-AUC {fmt(chosen['valid_roc_auc'], '.4f')})."
        )
    speed = ""
    if _number(best.get("explain_us_per_row")) and _number(chosen.get("explain_us_per_row")):
        ratio = float(best["explain_us_per_row"]) / max(float(chosen["explain_us_per_row"]), 1e-9)
        speed = f", for explanations {ratio:,.1f}x faster"
    return (
        f"**What the trade-off cost:** {cost:.4f} validation ROC-AUC against the most accurate "
        f"shape ({fmt(best.get('num_leaves'), 'd')} leaves, {_depth(best.get('max_depth'))}: "
        f"{fmt(best['valid_roc_auc'], '.4f')}){speed}."
    )


def _depth(value: Any) -> str:
    if _number(value) and value <= 0:
        return "no depth limit"
    return f"depth {fmt(value, 'd')}"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value))


def window_section(
    split_describe: Mapping[str, Any], data_window: Mapping[str, Any], test: Mapping[str, Any]
) -> str:
    """Train / valid / test: as-of span and snapshots (from `TimeSplit.describe()`), rows,
    positives and base rate (from `data_window[part]`; the test part falls back to the model's
    test metrics), then every scalar of `data_window` (first/last as-of, data hash ...)."""
    rows = []
    for part in ("train", "valid", "test"):
        counts = dict(data_window.get(part) or {})
        if part == "test":
            counts = {**{k: test.get(k) for k, _, _ in COUNTS}, **counts}
        rows.append([
            part, fmt(split_describe.get(f"split_{part}")),
            fmt(split_describe.get(f"split_{part}_snapshots"), "d"),
            *(fmt(counts.get(k), f) for k, _, f in COUNTS),
        ])  # fmt: skip
    text = table(["part", "as-of dates", "snapshots", "rows", "positives", "base rate"], rows)
    extras = [
        f"- {key.replace('_', ' ')}: {fmt(value)}"
        for key, value in data_window.items()
        if key not in ("train", "valid", "test") and not isinstance(value, Mapping)
    ]
    horizon = split_describe.get("split_horizon_days")
    if horizon is not None:
        extras.append(f"- label horizon: {fmt(horizon)} days")
    dropped = split_describe.get("split_dropped")
    if dropped:
        extras.append(f"- snapshots left out between parts (labels would overlap): {dropped}")
    return text + ("\n\n" + "\n".join(extras) if extras else "")


def model_card(
    target: str,
    fitted: FittedModel,
    evaluation_for_target: Mapping[str, Any],
    split_describe: Mapping[str, Any],
    data_window: Mapping[str, Any],
    spec_version: str,
    code_version: str,
    shapes_table: Sequence[Mapping[str, Any]],
    config: Config,
) -> str:
    """The markdown model card for `target` (see the module docstring for what it holds)."""
    ev = evaluation_for_target
    horizon = config.labels.horizon_days
    never = ", ".join(f"`{n}`" for n in config.reasons.never_as_reason) or MISSING
    by_group = ev.get("by_group") or {}
    shape = fitted.shape or {}
    shape_text = ", ".join(f"{k}={v}" for k, v in shape.items()) or MISSING
    registered = config.training.registered_models.get(target, MISSING)
    calibration = str(getattr(fitted.calibrator, "method", MISSING)).capitalize()
    used = [n for n in config.reasons.never_as_reason if n in fitted.features]
    used_text = ", ".join(f"`{n}`" for n in used) or "none of them"
    sections = [
        f"# Keepwell {target} model card",
        f"Registered model `{registered}`. Predicts the probability that a customer "
        f"{_event(target, config)} within the next {horizon} days after a monthly as-of date.",
        "## Intended use",
        "- Ranking customers for relationship-manager (RM) callbacks: who to call first, with "
        f"up to {config.reasons.top_k} plain-language reasons per customer.\n"
        "- **Not** for credit decisions, pricing, eligibility, or any decision about a customer "
        "without a human in the loop. Scores are probabilities for prioritising outreach, not "
        "verdicts about people.",
        "## Data window",
        window_section(split_describe, data_window, ev.get("model") or {}),
        "## Test-period metrics",
        "Held-out newest period, never seen in training, early stopping or calibration. "
        "Lift and capture are for the top-scored customers; capture@capacity is the share of "
        "positives the RMs' total daily callback capacity would reach.",
        metrics_table(ev),
        "## By segment and for customers needing special care",
        "Groups with fewer than "
        f"{FEW_POSITIVES} positives have uncertain metrics; the counts are shown to judge that.",
        groups_table(by_group),
        "## Model shape and explanation cost",
        f"Chosen shape: {shape_text}; {fitted.best_iteration or MISSING} trees "
        "(early stopping on the validation period).",
        shapes_section(shapes_table, config),
        "## Calibration",
        f"{calibration} calibration of the booster's margin on the validation period, so that "
        f"scores are probabilities (imbalance handling: {config.training.imbalance}). The test "
        "period's expected calibration error (ECE, 10 equal-count bins) is in the metrics table.",
        "## Reasons and fairness",
        f"Reasons are the customer's top {config.reasons.top_k} risk-raising TreeSHAP "
        "contributions, in words with the customer's own values. These attributes are never "
        f"given as a reason to an RM: {never}. The model uses {used_text} as inputs, so these "
        "may still drive the score; only the explanation leaves them out. Check the per-group "
        "table above before relying on scores for a group.",
        "## Limits",
        "- The demo bank is simulated: metrics on it show the method works against a known truth, "
        "not how it will perform on a real bank's customers.\n"
        f"- The horizon is {horizon} days; the model says nothing about later events.\n"
        "- Snapshots are monthly: a score is as fresh as the last as-of date.\n"
        "- Performance for groups with few positives is uncertain (see the counts per group).\n"
        "- A customer's reasons explain the score, not the cause of their behaviour; calling "
        "them is a decision for the RM.",
        "## Versions",
        table(
            ["field", "value"],
            [
                ["target", target],
                ["feature spec version", fmt(spec_version)],
                ["model spec version", fmt(fitted.spec_version or None)],
                ["code version", fmt(code_version)],
                ["features", fmt(len(fitted.features), "d")],
                ["trees", fmt(fitted.best_iteration or None, ",d")],
            ],
        ),
    ]
    return "\n\n".join(sections) + "\n"


def _event(target: str, config: Config) -> str:
    drop = config.labels.churn.aum_drop_fraction
    least = config.labels.complaint.min_complaints
    return {
        "churn": f"leaves the bank (closes the relationship or its assets fall by {drop:.0%} or "
        "more)",
        "complaint": f"opens at least {least} complaint(s)",
    }.get(target, f"has a `{target}` event")
