"""`keepwell simulate`: read the demo bank and the champions, run `reporting.simulation.core`,
write the
report.

Inputs, once for all simulated months:

1. the demo bank's `oracle.parquet` (who is active at each monthly as-of date, and the true
   `callback_effect`): the months are the last `months` oracle dates T with T + horizon no later
   than the data's end (labelled dates);
2. the callbacks table: the reach rate = reached / made policy callbacks (held-out ones are not
   made); the customers table: each customer's RM;
3. the feature snapshots of those dates (`features.pipeline.build_snapshot_table`, one build),
   scored by the champion churn and complaint models (calibrated probabilities), the value score
   (`serving.decisions.tiers.value_scores`, the planner's value), the seed rule, and the callback
   effect
   model's estimate when one is given (`EffectModel.predict(frame)`);
4. the risk holdout of each date (`serving.planning.job.holdout_draw`).

Output: `<reports>/simulation.json` (settings, per policy the totals and per month figures) and
`<reports>/simulation.png` (retained customers per 1,000 calls by policy), both written
atomically.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.pipeline import build_snapshot_table, open_data
from keepwell.io import atomic_path, write_text
from keepwell.words import TARGETS, current_name
from reporting.simulation.core import (
    ESTIMATE,
    HAS_TASK,
    POLICIES,
    MonthBook,
    SimulationError,
    SimulationSettings,
    report_rows,
    simulate,
)
from serving.decisions.calendar import WorkingCalendar
from serving.decisions.rules import due_tasks_from_folder
from serving.decisions.tiers import decide_frame, risk_tiers
from serving.decisions.value import ValueTiers, value_inputs, value_scores
from serving.planning.job import callback_flags, holdout_draw
from serving.scoring.loading import load_champion, registry_uri
from serving.scoring.model import DECISION_FEATURES
from training.baselines import seed_rule

if TYPE_CHECKING:
    from keepwell.config import Config
    from keepwell.workspace import Workspace
    from serving.scoring.model import ServedModel

ORACLE = "oracle.parquet"
MADE = ("reached", "no_answer", "declined")
NO_EFFECT_MODEL = "effect: no callback effect model (run keepwell train-effect)"
# where the callback effect model's functions live (another helper's package, being written)
EFFECT_MODULES = ("training.effect.model", "training.effect.run")
Say = Callable[[str], None]


def effect_function(name: str) -> Callable[..., Any] | None:
    """`load_effect_model` or `train_effect` of the callback effect model's package; None when
    it is not installed (guarded import: the simulation runs without it)."""
    for module in EFFECT_MODULES:
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if found is not None:
            return found
    return None


def load_effect(workspace: Workspace, config: Config, *, newest: bool = False) -> Any | None:
    """The workspace's champion callback effect model (`EffectModel.predict(frame)`), or None;
    with `newest` the latest registered version whatever its alias (the benchmark's choice)."""
    load = effect_function("load_effect_model")
    if load is None:
        return None
    return load(workspace, config, newest=True) if newest else load(workspace, config)


def describe_effect(effect_model: Any | None) -> str | None:
    """'<registered name> v<version> (<aliases>, <learner>)' of a loaded effect model."""
    if effect_model is None:
        return None
    extra = getattr(effect_model, "extra", {}) or {}
    learner = getattr(effect_model, "learner", type(effect_model).__name__)
    if "version" not in extra:
        return f"{type(effect_model).__name__} ({learner})"
    aliases = ", ".join(extra.get("aliases", [])) or "no alias"
    return f"{extra.get('registered_model', 'effect')} v{extra['version']} ({aliases}; {learner})"


def labelled_dates(
    oracle_dates: Sequence[dt.date], data_end: dt.date, horizon_days: int, months: int
) -> list[dt.date]:
    """The last `months` of the oracle's as-of dates whose horizon ends by `data_end`."""
    done = sorted(d for d in set(oracle_dates) if d + dt.timedelta(days=horizon_days) <= data_end)
    if not done:
        raise SimulationError(
            f"no oracle as-of date has its {horizon_days}-day horizon inside the data (data end "
            f"{data_end}); generate a longer demo bank"
        )
    return done[-months:]


def reach_rate(callbacks: pd.DataFrame) -> tuple[float, int]:
    """(reached / made, made) over the callbacks table; held-out callbacks are not made."""
    outcome = callbacks["outcome"].astype(str)
    made = int(outcome.isin(MADE).sum())
    if made == 0:
        raise SimulationError(
            "callbacks: no made callback (outcome reached, no_answer or declined) to measure the "
            "reach rate from"
        )
    return float(outcome.eq("reached").sum() / made), made


def _read(folder: Path, table: str, columns: list[str], **kwargs: Any) -> pd.DataFrame:
    import pyarrow.parquet as pq

    path = folder / f"{table}.parquet"
    if not path.is_file():
        raise SimulationError(f"the data folder {folder} has no {table} table ({path.name})")
    try:
        return pq.read_table(path, columns=columns, **kwargs).to_pandas()
    except (KeyError, ValueError) as exc:
        raise SimulationError(f"cannot read columns {columns} of {path}: {exc}") from None


def read_oracle(folder: Path, dates: Sequence[dt.date] | None = None) -> pd.DataFrame:
    """customer_id, as_of (date), effect (the oracle's callback_effect) of the given dates."""
    import pyarrow.dataset as ds

    if not (folder / ORACLE).is_file():
        raise SimulationError(
            f"{folder} has no {ORACLE}: the simulation needs the demo bank's recorded truth "
            "(run keepwell demo-data)"
        )
    filters = ds.field("as_of").isin(list(dates)) if dates is not None else None
    frame = _read(folder, "oracle", ["customer_id", "as_of", "callback_effect"], filters=filters)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame.rename(columns={"callback_effect": "effect"})


def _oracle_dates(folder: Path) -> list[dt.date]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not (folder / ORACLE).is_file():
        read_oracle(folder)  # raises the error that names the missing file
    column = pq.read_table(folder / ORACLE, columns=["as_of"]).column("as_of")
    return sorted(pd.to_datetime(pc.unique(column).to_pandas()).dt.date)


def score_snapshot(
    frame: pd.DataFrame, models: dict[str, ServedModel], config: Config
) -> pd.DataFrame:
    """customer_id, as_of, value_score, churn/complaint probabilities and the seed rule of a
    feature frame."""

    out = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str).to_numpy(),
            "as_of": pd.to_datetime(frame["as_of"]).dt.date.to_numpy(),
        }
    )
    inputs = frame[value_inputs(frame.columns, config)]
    out["value_score"] = value_scores(inputs, config, absent_is_null=True)
    for target in ("churn", "complaint"):
        if target not in models:
            raise SimulationError(f"no champion {target} model to score the snapshots with")
        fitted = models[target].fitted
        out[f"{target}_probability"] = fitted.predict_proba(frame, threads=1)
    out["seed_rule"] = seed_rule(frame)
    for name in DECISION_FEATURES:  # what the tier matrix and the channel need
        out[name] = frame[name].to_numpy(dtype=object) if name in frame.columns else None
    return out


def contact_channels_of(book: pd.DataFrame, config: Config) -> np.ndarray:
    """Each customer's tier-matrix channel at T, as the planner decides it: the value tier
    against the cut points of that month's book, the risk tier of the champions' probabilities
    (`serving.decisions.tiers.risk_tiers`), then `decide_frame`."""
    scores = book["value_score"].to_numpy(float)
    frame = book[list(DECISION_FEATURES)].copy()
    frame["value_tier"] = ValueTiers.fit(scores, config).tier(scores)
    frame["risk_tier"] = risk_tiers(
        book["churn_probability"].to_numpy(float),
        book["complaint_probability"].to_numpy(float),
        config,
    )
    return decide_frame(frame, config)["channel"].to_numpy(dtype=object)


def build_months(
    folder: Path,
    config: Config,
    dates: Sequence[dt.date],
    models: dict[str, ServedModel],
    effect_model: Any | None,
    say: Say,
) -> list[MonthBook]:
    """The book of each simulated month (`reporting.simulation.core.MONTH_COLUMNS`, plus
    `estimated_effect`
    when an effect model is given)."""

    say(f"building the feature snapshots of {len(dates)} month(s) from {folder}")
    frame = build_snapshot_table(folder, list(dates), config).to_pyarrow().to_pandas()
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    scored = score_snapshot(frame, models, config)
    if effect_model is not None:
        scored[ESTIMATE] = np.asarray(effect_model.predict(frame), dtype=float)
        if scored[ESTIMATE].shape[0] != len(frame):
            raise SimulationError("the effect model returned a different number of rows")
    say(f"scored {len(frame):,} customer-months")
    customers = _read(folder, "customers", ["customer_id", "rm_id"])
    customers["customer_id"] = customers["customer_id"].astype(str)
    rm_of = customers.drop_duplicates("customer_id").set_index("customer_id")["rm_id"]
    oracle = read_oracle(folder, dates)
    callbacks = _read(
        folder, "callbacks", ["customer_id", "reason", "outcome", "due_at", "done_at"]
    )
    calendar = WorkingCalendar.from_config(config)
    months = []
    for day in dates:
        truth = oracle[oracle["as_of"] == day]
        snap = scored[scored["as_of"] == day]
        book = truth.merge(snap.drop(columns="as_of"), on="customer_id", how="inner")
        lost = len(truth) - len(book)
        if lost:
            say(f"{day}: {lost:,} active customer(s) have no feature row and are left out")
        book["rm_id"] = rm_of.reindex(book["customer_id"]).to_numpy(dtype=object)
        book["in_holdout"] = holdout_draw(book["customer_id"].tolist(), day, config)
        flags = callback_flags(callbacks, day, config)
        for flag, members in flags.items():
            book[flag] = book["customer_id"].isin(members).to_numpy()
        book["channel"] = contact_channels_of(book, config)
        due = due_tasks_from_folder(folder, day, config, calendar)
        book[HAS_TASK] = book["customer_id"].isin(set(due["customer_id"].astype(str))).to_numpy()
        months.append(MonthBook(day, book.drop(columns="as_of").reset_index(drop=True)))
    return months


def _demo_meta(folder: Path) -> dict[str, Any]:
    path = folder / "demo.json"
    return json.loads(path.read_text("utf-8")) if path.is_file() else {}


def run_simulation(
    workspace: Workspace,
    config: Config,
    *,
    data_dir: Path | str | None = None,
    months: int | None = None,
    policies: Sequence[str] | None = None,
    calls_per_rm: int | None = None,
    effect_model: Any | None = None,
    models: dict[str, ServedModel] | None = None,
    say: Say = lambda _m: None,
) -> dict[str, Any]:
    """Everything of `keepwell simulate`; returns the report (also written, see `write_report`).
    Policy `effect` without an effect model is left out with a note."""

    began = time.perf_counter()
    settings = SimulationSettings.from_config(config, months=months, calls_per_rm=calls_per_rm)
    chosen = list(dict.fromkeys(current_name(p, "policy") for p in (policies or POLICIES)))
    unknown = [p for p in chosen if p not in POLICIES]
    if unknown:
        raise SimulationError(f"unknown policy(ies) {unknown}; known: {list(POLICIES)}")
    notes = []
    if "effect" in chosen and effect_model is None:
        chosen.remove("effect")
        notes.append(NO_EFFECT_MODEL)
        say(NO_EFFECT_MODEL)
    folder = Path(data_dir) if data_dir is not None else workspace.demo_data
    if not folder.is_dir():
        raise SimulationError(f"the data folder {folder} does not exist (run keepwell demo-data)")
    if models is None:
        uri = registry_uri(workspace)
        models = {t: load_champion(t, config, uri) for t in TARGETS}
    say("champions: " + ", ".join(f"{m.name} v{m.version}" for m in models.values()))
    data_end = open_data(folder).data_end
    dates = labelled_dates(
        _oracle_dates(folder), data_end, config.labels.horizon_days, settings.months
    )
    reach, made = reach_rate(_read(folder, "callbacks", ["outcome"]))
    say(f"reach rate {reach:.1%} over {made:,} made callbacks; months {dates[0]} .. {dates[-1]}")
    books = build_months(folder, config, dates, models, effect_model, say)
    results = simulate(
        books,
        chosen,
        calls_per_rm=settings.calls_per_rm,
        reach=reach,
        config=config,
        seed=settings.seed,
    )
    meta = _demo_meta(folder)
    report = {
        "settings": {
            "data": str(folder),
            "months": [d.isoformat() for d in dates],
            "calls_per_rm": settings.calls_per_rm,
            "seed": settings.seed,
            "reach_rate": reach,
            "callbacks_made": made,
            "horizon_days": config.labels.horizon_days,
            "risk_holdout_share": config.planner.risk_holdout_share,
            "complaint_weight": config.planner.complaint_weight,
            "effect_heterogeneity": meta.get("effect_heterogeneity"),
            "customers": int(sum(len(b.book) for b in books) / max(len(books), 1)),
            "rms": int(pd.concat([b.book["rm_id"] for b in books]).nunique()),
            "models": {t: f"{m.name} v{m.version}" for t, m in models.items()},
            "effect_model": describe_effect(effect_model),
            "policies": chosen,
            "expectation": "expected figures (reach x true effect), no Monte Carlo draws",
        },
        "policies": {name: r.to_dict() for name, r in results.items()},
        "notes": notes,
        "seconds": round(time.perf_counter() - began, 2),
    }
    return report


def write_report(report: dict[str, Any], reports_dir: Path) -> tuple[Path, Path]:
    """`simulation.json` and `simulation.png` in `reports_dir`, each atomically."""
    json_path, png_path = reports_dir / "simulation.json", reports_dir / "simulation.png"
    write_text(json_path, json.dumps(report, indent=2, allow_nan=False) + "\n")
    fig = plot(report)
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return json_path, png_path


def plot(report: dict[str, Any]):
    """Horizontal bars: expected customers retained per 1,000 calls by policy."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = report_rows(report["policies"])
    fig = Figure(figsize=(6.4, 0.5 * len(rows) + 1.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = [name for name, _ in rows][::-1]
    values = [r["retained_per_1000_calls"] for _, r in rows][::-1]
    colours = ["#b03a2e" if n == "oracle" else "#1f5f99" for n in names]
    ax.barh(names, values, color=colours)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.1f}", va="center", fontsize=8)
    s = report["settings"]
    ax.set_title("Customers retained per 1,000 risk calls", fontsize=10, loc="left")
    ax.set_xlabel(
        f"expected customers retained per 1,000 calls ({len(s['months'])} months, "
        f"{s['calls_per_rm']} calls per RM a month)",
        fontsize=9,
    )
    ax.spines[["top", "right"]].set_visible(False)
    return fig
