"""Who may get a new risk call, and who fits an RM's capacity: the one rule the daily planner
(`serving.planning.planner.compose_plan`) and the decision simulation
(`reporting.simulation.core.simulate`) both apply, so that they choose the same customers.

A customer is a **candidate** for a new risk task when

* the tier matrix says to contact them: their `channel` (`serving.decisions.tiers.decide_frame`)
  is not "none" (a book without a `channel` column contacts everyone);
* they do not already have a task (`taken`: a mandatory or carried task in the planner, a call
  in the previous month or a due mandatory task in the simulation);
* they were not reached recently (`recently_contacted`) and have no policy callback held out in
  the current cycle (`callback_holdout`: a risk call would contaminate that experiment);
* they are not in the risk holdout (`in_holdout`): those are *held*, never called.

The flags are optional columns of the book; absent means False.

The **capacity cut** keeps, per RM and in list order, the first `room` rows that compete for
room (`within_capacity`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# The planner's flag columns: optional booleans of the scored book (missing: False).
FLAG_COLUMNS = ("in_holdout", "callback_holdout", "recently_contacted")
NO_CONTACT = "none"


def flag(book: pd.DataFrame, name: str) -> np.ndarray:
    """The book's boolean column `name`, False where null or when the column is absent."""
    if name not in book.columns:
        return np.zeros(len(book), bool)
    return book[name].fillna(False).to_numpy(bool)


def contactable(book: pd.DataFrame) -> np.ndarray:
    """Rows whose tier-matrix channel is a contact (everyone when the book has no `channel`)."""
    if "channel" not in book.columns:
        return np.ones(len(book), bool)
    return book["channel"].astype(str).to_numpy() != NO_CONTACT


@dataclass(frozen=True)
class Candidates:
    """Masks over the book: `callable` may get a new risk task, `held` would have but are in
    the risk holdout, `contact` is the tier-matrix filter alone."""

    callable: np.ndarray
    held: np.ndarray
    contact: np.ndarray


def risk_candidates(book: pd.DataFrame, taken: np.ndarray | None = None) -> Candidates:
    """The new risk-task candidates of a book (see the module docstring)."""
    contact = contactable(book)
    eligible = contact & ~flag(book, "recently_contacted") & ~flag(book, "callback_holdout")
    if taken is not None:
        eligible &= ~np.asarray(taken, bool)
    holdout = flag(book, "in_holdout")
    return Candidates(callable=eligible & ~holdout, held=eligible & holdout, contact=contact)


def within_capacity(rm_ids: np.ndarray, competes: np.ndarray, room: np.ndarray | int) -> np.ndarray:
    """For rows in list order: is each row that `competes` for room among the first `room` such
    rows of its RM? (`room` per row or one number; below zero counts as zero.) Rows that do not
    compete are True."""
    competes = np.asarray(competes, bool)
    nth = pd.Series(competes).groupby(np.asarray(rm_ids), sort=False).cumsum().to_numpy(int)
    return ~competes | (nth <= np.maximum(room, 0))
