"""The decision simulation behind `keepwell simulate`: which ranking of risk calls retains the most
customers (pure: policies and the month loop; `reporting.simulation.run` reads the inputs).

**What is simulated.** For each of the last `months` monthly as-of dates T of the demo bank whose
90-day horizon lies inside the data (labelled dates), every policy picks, per RM, up to
`calls_per_rm` risk calls among the *eligible* customers:

* active at T (the oracle has a row for them: open, not churned, opened before T) and with an RM;
* the planner's risk candidates (`serving.decisions.selection.risk_candidates`, the one rule
  both use): the tier matrix contacts them at T (`channel` is not "none": no Low-risk
  customer under the default matrix), they have no task already (a due mandatory task at T,
  `has_task`, or a call by the same policy in the previous simulated month: a completed
  callback protects a customer for about three months in the demo bank's process), they were
  not reached within `planner.contact_cooldown_days` (`recently_contacted`), have no policy
  callback held out in the current cycle (`callback_holdout`) and are not in the randomised risk
  holdout of T's quarter (`serving.planning.job.holdout_draw`, never called by any policy).
  `channel`, `has_task` and the flags are optional columns of the book; absent means False
  (no `channel`: everyone is contacted).

Every policy except `none` fills the capacity (the same number of calls), so policies compare at
equal volume. Ranking: highest score first within an RM; ties are broken by the book's order
for the planner's scores (as `serving.planning.planner.compose_plan` does) and at random (seeded)
for
`random` and `seed_rule`.

**Policies.** `none` (no risk calls), `random`, `seed_rule` (the CRM early-warning rule
`training.baselines.seed_rule`, 0/1), and the planner's rankings through
`serving.planning.planner.ranking_score`, so the simulation scores like `keepwell plan --rank-by`
(one
difference: the planner merges a risk call into a mandatory task due the same day, a monthly
simulation cannot):
`risk` (p_churn + complaint_weight x p_complaint of the champions), `value_at_risk` (value x that),
`effect` (value x the callback effect model's *estimated* reduction of the churn probability,
the book's `estimated_effect` column; `uplift` is its old name), and `oracle` (value x the
*true* effect: `ranking_score(..., "effect")` with the true effect as the estimate), the ceiling.

**What a call does.** The truth is the demo bank's oracle (`keepwell.demo.process.oracle`):
`effect` = the reduction of the customer's 90-day churn probability from a callback completed at
T, computed from the customer's true state. A call reaches the customer with the bank's reach rate
(reached / made policy callbacks, from the callbacks table); so a chosen customer adds

    retained       = reach x effect
    value_retained = reach x effect x max(value, 0)

(the value score of `serving.decisions.tiers.value_scores` at T, floored at 0 as in the planner's
ranking).
These are **expectations, not draws**: no Monte Carlo noise, the same inputs give the same
figures. An effect below zero (a *sleeping dog*, annoyed by a call) counts negative.

**What it is not.** The bank's recorded history does not change with the simulated calls: each
month's state, churn and policy callbacks are those of the record, so the months are summed, not
chained (a customer retained in month m is not added back to month m+1's book). The planner's
mandatory tasks themselves and its daily carry-over are not simulated: the capacity is the risk
calls an RM makes in a month, cut by the planner's rule (`within_capacity`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from keepwell.config import Simulation
from keepwell.settings import CheckedSection
from keepwell.words import current_name
from serving.decisions.selection import flag, risk_candidates, within_capacity
from serving.planning.planner import ESTIMATE, ranking_score

if TYPE_CHECKING:
    from keepwell.config import Config

POLICIES = ("none", "random", "seed_rule", "risk", "value_at_risk", "effect", "oracle")
PLANNER_RANKING = {"risk": "risk", "value_at_risk": "value_at_risk", "effect": "effect"}
# one row per active customer at T
MONTH_COLUMNS = (
    "customer_id",
    "rm_id",
    "value_score",
    "churn_probability",
    "complaint_probability",
    "seed_rule",
    "effect",  # the true reduction of the 90-day churn probability from a completed callback
    "in_holdout",
)
# optional columns, as in the planner's book: the tier-matrix channel ("none": not contacted),
# the planner's other flags (a flagged customer is never called) and a due mandatory task
OPTIONAL_COLUMNS = ("channel", "callback_holdout", "recently_contacted", "has_task")
HAS_TASK = "has_task"
# optional column ESTIMATE: the effect model's estimate (needed by policy effect)
FIGURES = ("calls", "retained", "value_retained")


class SimulationError(ValueError):
    """The simulation's inputs do not fit; the message names the column, policy or value."""


class SimulationSettings(
    CheckedSection, Simulation, error=SimulationError, what="simulation settings"
):
    """The `simulation:` section of the config: `keepwell.config.Simulation` itself (the one
    declaration of its fields and defaults), with bad values as `SimulationError`."""

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> SimulationSettings:
        """The config's `simulation` section else the defaults, then the non-None `overrides`
        (command-line options); an unknown key is an error."""
        return cls.from_section(getattr(config, "simulation", None), **overrides)


@dataclass(frozen=True)
class MonthBook:
    """One simulated month: the as-of date and the book at T (`MONTH_COLUMNS`, maybe
    `estimated_effect`)."""

    as_of: dt.date
    book: pd.DataFrame


@dataclass
class PolicyResult:
    name: str
    months: list[dict[str, Any]] = field(default_factory=list)  # as_of + FIGURES per month
    called: list[np.ndarray] = field(default_factory=list)  # customer ids called, per month

    def totals(self) -> dict[str, float]:
        out = {k: float(sum(m[k] for m in self.months)) for k in FIGURES}
        out["calls"] = int(out["calls"])
        return with_rates(out)

    def to_dict(self) -> dict[str, Any]:
        return {**self.totals(), "months": self.months}


def with_rates(figures: Mapping[str, Any]) -> dict[str, Any]:
    """`figures` (calls, retained, value_retained) plus the rates per 1,000 calls (0 without
    calls)."""
    calls = figures["calls"]
    per = 1000.0 / calls if calls else 0.0
    return {
        **figures,
        "retained_per_1000_calls": figures["retained"] * per,
        "value_retained_per_1000_calls": figures["value_retained"] * per,
    }


def check_month(month: MonthBook, policies: Sequence[str]) -> None:
    book = month.book
    missing = [c for c in MONTH_COLUMNS if c not in book.columns]
    if "effect" in policies and ESTIMATE not in book.columns:
        missing.append(ESTIMATE)
    if missing:
        raise SimulationError(f"the book of {month.as_of} lacks column(s) {missing}")
    dupes = book["customer_id"].astype(str)
    if dupes.duplicated().any():
        raise SimulationError(
            f"the book of {month.as_of} has duplicate customer_id(s), e.g. "
            f"{dupes[dupes.duplicated()].head(5).tolist()}"
        )
    for name in ("value_score", "effect", "churn_probability", "complaint_probability"):
        bad = ~np.isfinite(book[name].to_numpy(float))
        if bad.any():
            ids = book.loc[bad, "customer_id"].head(5).tolist()
            raise SimulationError(
                f"the book of {month.as_of}: column {name!r} is not a finite number for "
                f"{int(bad.sum())} customer(s), e.g. {ids}"
            )


def uniform(customer_ids: Sequence[Any], as_of: dt.date, seed: int, salt: str) -> np.ndarray:
    """A reproducible uniform number per customer, from (seed, salt, as_of, customer_id): the
    same customer gets the same draw whatever else is in the book."""
    prefix = f"{seed}:{salt}:{as_of.isoformat()}:"
    draws = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b((prefix + str(c)).encode(), digest_size=8).digest())
            for c in customer_ids
        ),
        dtype=np.uint64,
        count=len(customer_ids),
    )
    return draws.astype(np.float64) / 2.0**64


def policy_order(
    policy: str, book: pd.DataFrame, as_of: dt.date, config: Config, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(score, tie-break) of each row for `policy`: higher score first, then lower tie-break."""
    if policy not in POLICIES:
        raise SimulationError(f"unknown policy {policy!r}; known: {list(POLICIES)}")
    position = np.arange(len(book), dtype=float)
    if policy == "none":
        return np.full(len(book), np.nan), position
    if policy in ("random", "seed_rule"):
        ties = uniform(book["customer_id"].tolist(), as_of, seed, policy)
        if policy == "random":
            return ties, position
        return book["seed_rule"].to_numpy(float), ties
    if policy == "oracle":
        truth = book.drop(columns=[ESTIMATE], errors="ignore").assign(**{ESTIMATE: book["effect"]})
        return ranking_score(truth, "effect", config), position
    if policy == "effect" and ESTIMATE not in book.columns:
        raise SimulationError(
            f"policy effect needs the estimated callback effect per customer (column {ESTIMATE!r})"
        )
    return ranking_score(book, PLANNER_RANKING[policy], config), position


def choose(
    rm_ids: np.ndarray,
    score: np.ndarray,
    ties: np.ndarray,
    eligible: np.ndarray,
    calls_per_rm: int,
) -> np.ndarray:
    """Which rows are called: per RM the first `calls_per_rm` eligible rows by score (higher
    first), then tie-break (lower first), cut by the planner's capacity rule
    (`serving.decisions.selection.within_capacity`). A NaN score is never called."""
    chosen = np.zeros(len(score), dtype=bool)
    callable_ = eligible & np.isfinite(score) & pd.notna(rm_ids)
    idx = np.flatnonzero(callable_)
    if idx.size == 0 or calls_per_rm <= 0:
        return chosen
    rms = pd.Series(rm_ids[idx]).astype(str).to_numpy()
    order = np.lexsort((ties[idx], -score[idx], rms))
    ranked = idx[order]
    chosen[ranked[within_capacity(rms[order], np.ones(len(order), bool), calls_per_rm)]] = True
    return chosen


def month_candidates(book: pd.DataFrame, previous: set[str]) -> np.ndarray:
    """Who may be called this month: the planner's risk candidates
    (`serving.decisions.selection.risk_candidates`: tier-matrix contact, no task already, not
    recently reached, no policy holdout, not in the risk holdout), where a customer called by
    the same policy last month or with a due mandatory task (`has_task`) already has one."""
    ids = book["customer_id"].astype(str)
    taken = ids.isin(previous).to_numpy() | flag(book, HAS_TASK)
    return risk_candidates(book, taken).callable


def expected(book: pd.DataFrame, chosen: np.ndarray, reach: float) -> dict[str, float]:
    """Calls, expected customers retained and value retained by calling the chosen rows."""
    effect = book["effect"].to_numpy(float)[chosen]
    value = np.maximum(book["value_score"].to_numpy(float)[chosen], 0.0)
    return {
        "calls": int(chosen.sum()),
        "retained": float(reach * effect.sum()),
        "value_retained": float(reach * (effect * value).sum()),
    }


def simulate(
    months: Sequence[MonthBook],
    policies: Sequence[str],
    *,
    calls_per_rm: int,
    reach: float,
    config: Config,
    seed: int = 7,
) -> dict[str, PolicyResult]:
    """Run every policy over the months (oldest first); see the module docstring."""
    policies = [current_name(p, "policy") for p in policies]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise SimulationError(f"unknown policy(ies) {unknown}; known: {list(POLICIES)}")
    if not 0.0 <= reach <= 1.0:
        raise SimulationError(f"the reach rate must be within [0, 1], got {reach}")
    ordered = sorted(months, key=lambda m: m.as_of)
    for month in ordered:
        check_month(month, policies)
    results = {}
    for policy in policies:
        result = PolicyResult(policy)
        previous: set[str] = set()
        for month in ordered:
            book = month.book.reset_index(drop=True)
            ids = book["customer_id"].astype(str)
            eligible = month_candidates(book, previous)
            score, ties = policy_order(policy, book, month.as_of, config, seed)
            chosen = choose(
                book["rm_id"].to_numpy(dtype=object), score, ties, eligible, calls_per_rm
            )
            figures = expected(book, chosen, reach)
            result.months.append({"as_of": month.as_of.isoformat(), **with_rates(figures)})
            called = ids.to_numpy()[chosen]
            result.called.append(called)
            previous = set(called)
        results[policy] = result
    return results


def report_rows(results: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The policies' totals (the report's `policies` section), best retained per 1,000 calls
    first; `none` (no calls) last."""
    return sorted(
        results.items(),
        key=lambda kv: (kv[1]["calls"] == 0, -kv[1]["retained_per_1000_calls"], kv[0]),
    )
