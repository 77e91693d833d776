"""A trained target model: LightGBM booster + calibrator + the feature encoding it expects.

`FittedModel` is what training produces and what every consumer (evaluation, reasons, the MLflow
pyfunc, serving) calls: `matrix` turns a feature frame into the booster's input, `margin` is the
raw score, `predict_proba` the calibrated probability, `contributions` LightGBM's TreeSHAP
`pred_contrib` (one column per feature plus the bias, summing to the margin).

It saves to two plain files (`booster.txt`, LightGBM's own text format, and `model.json`), no
pickle, so that an artifact can be read by any LightGBM and inspected by a person.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from keepwell.io import atomic_path

BOOSTER_FILE = "booster.txt"
MODEL_FILE = "model.json"


@dataclass(frozen=True)
class Calibrator:
    """Maps the booster's margin to a probability, fitted on the validation period.

    `isotonic`: a monotone step function through (`x`, `y`), linearly interpolated between the
    points and clipped at the ends (what scikit-learn's IsotonicRegression predicts);
    `platt`: p = 1 / (1 + exp(-(a * margin + b))).
    """

    method: Literal["isotonic", "platt"]
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0

    @classmethod
    def fit(
        cls, margin: np.ndarray, y: np.ndarray, method: Literal["isotonic", "platt"]
    ) -> Calibrator:
        margin = np.asarray(margin, dtype=float)
        y = np.asarray(y, dtype=float)
        if len(np.unique(y)) < 2:
            raise ValueError(
                f"cannot calibrate on {len(y)} rows with a single label value; the validation "
                "period needs both positive and negative examples"
            )
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(margin, y)
            return cls("isotonic", x=tuple(map(float, iso.X_thresholds_)),
                       y=tuple(map(float, iso.y_thresholds_)))  # fmt: skip
        if method == "platt":
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), y)
            return cls("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
        raise ValueError(f"calibration must be 'isotonic' or 'platt', got {method!r}")

    def __call__(self, margin: np.ndarray) -> np.ndarray:
        margin = np.asarray(margin, dtype=float)
        if self.method == "isotonic":
            return np.interp(margin, np.asarray(self.x), np.asarray(self.y))
        return 1.0 / (1.0 + np.exp(-(self.a * margin + self.b)))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "x": list(self.x), "y": list(self.y), "a": self.a,
                "b": self.b}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        return cls(data["method"], tuple(data.get("x", ())), tuple(data.get("y", ())),
                   float(data.get("a", 1.0)), float(data.get("b", 0.0)))  # fmt: skip


CHUNK = 200_000  # rows per booster call: bounds the memory of a million-customer book


def probabilities(
    model: FittedModel,
    matrix_of: Callable[[int, int], Any],
    n: int,
    *,
    threads: int = 0,
    chunk: int = CHUNK,
    contributions: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The one way Keepwell turns features into probabilities: calibrated, clipped to [0, 1],
    `chunk` rows at a time. `matrix_of(lo, hi)` gives the booster input of rows [lo, hi)
    (`FittedModel.matrix` of a frame slice, or the served snapshot's `Rows.matrix`).

    With `contributions` the margin is the row sum of LightGBM's TreeSHAP contributions
    (`pred_contrib`, returned too, for the reasons) rather than a second `raw_score` predict; the
    two margins agree to rounding. The scorer, the planner, the simulation, monitoring,
    evaluation and the logged pyfunc (hence promotion) all call this."""
    prob = np.empty(n, dtype=float)
    parts = []
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        x = matrix_of(lo, hi)
        if contributions:
            contrib = np.asarray(
                model.booster.predict(x, pred_contrib=True, num_threads=threads), dtype=float
            )
            parts.append(contrib)
            margin = contrib.sum(axis=1)
        else:
            margin = model.booster.predict(x, raw_score=True, num_threads=threads)
        prob[lo:hi] = np.clip(model.calibrator(margin), 0.0, 1.0)
    if not contributions:
        return prob, None
    width = len(model.features) + 1
    return prob, np.concatenate(parts) if parts else np.empty((0, width), dtype=float)


@dataclass
class FittedModel:
    """One target's model. `features` is the input order; `categories` the levels of each
    categorical feature seen in training (an unseen level is treated as missing)."""

    target: str
    booster: Any  # lightgbm.Booster
    calibrator: Calibrator
    features: tuple[str, ...]
    categories: dict[str, list[str]]
    shape: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    best_iteration: int = 0
    spec_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # metrics, timings, data window ...

    # -- inputs --------------------------------------------------------------------------------
    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The booster's input: the model's features in order, categoricals with fixed levels,
        booleans and integers as floats (null stays NaN). Missing columns are an error."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise KeyError(
                f"the {self.target} model needs feature column(s) {missing}; "
                f"the frame has {len(frame.columns)} columns"
            )
        out: dict[str, Any] = {}
        for name in self.features:
            col = frame[name]
            if name in self.categories:
                values = col.astype("object").where(col.notna(), None)
                out[name] = pd.Categorical(values, categories=self.categories[name])
            else:
                out[name] = pd.to_numeric(col.astype("object"), errors="raise").astype("float64")
        return pd.DataFrame(out, index=frame.index)

    # -- scores --------------------------------------------------------------------------------
    def margin(self, frame: pd.DataFrame, *, threads: int = 0) -> np.ndarray:
        return np.asarray(
            self.booster.predict(self.matrix(frame), raw_score=True, num_threads=threads),
            dtype=float,
        )

    def predict_proba(self, frame: pd.DataFrame, *, threads: int = 0) -> np.ndarray:
        """Calibrated probabilities of a feature frame (`probabilities`, in chunks)."""
        prob, _ = probabilities(
            self, lambda lo, hi: self.matrix(frame.iloc[lo:hi]), len(frame), threads=threads
        )
        return prob

    def contributions(self, frame: pd.DataFrame, *, threads: int = 0) -> np.ndarray:
        """TreeSHAP contributions in margin units: (rows, features + 1), the last column the
        bias; each row sums to the margin."""
        return np.asarray(
            self.booster.predict(self.matrix(frame), pred_contrib=True, num_threads=threads),
            dtype=float,
        )

    # -- files ---------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "features": list(self.features),
            "categories": self.categories,
            "calibrator": self.calibrator.to_dict(),
            "shape": self.shape,
            "params": self.params,
            "best_iteration": self.best_iteration,
            "spec_version": self.spec_version,
            "extra": self.extra,
        }

    def save(self, folder: Path | str) -> Path:
        return save_model_files(folder, {BOOSTER_FILE: self.booster}, MODEL_FILE, self.meta())

    @classmethod
    def load(cls, folder: Path | str) -> FittedModel:
        import lightgbm as lgb

        folder = Path(folder)
        meta = json.loads((folder / MODEL_FILE).read_text("utf-8"))
        booster = lgb.Booster(model_file=str(folder / BOOSTER_FILE))
        return cls(
            target=meta["target"],
            booster=booster,
            calibrator=Calibrator.from_dict(meta["calibrator"]),
            features=tuple(meta["features"]),
            categories={k: list(v) for k, v in meta["categories"].items()},
            shape=meta.get("shape", {}),
            params=meta.get("params", {}),
            best_iteration=int(meta.get("best_iteration", 0)),
            spec_version=meta.get("spec_version", ""),
            extra=meta.get("extra", {}),
        )


def save_model_files(
    folder: Path | str, boosters: dict[str, Any], meta_file: str, meta: dict[str, Any]
) -> Path:
    """LightGBM text boosters (file name -> booster) and the JSON `meta`, each written atomically
    into `folder` (created); no pickle. Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, booster in boosters.items():
        with atomic_path(folder / file_name) as tmp:
            booster.save_model(str(tmp))
    with atomic_path(folder / meta_file) as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=2, default=str), "utf-8")
    return folder
