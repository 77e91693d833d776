"""Small real models for the reasons, pyfunc and card tests (built once per session and bank).

One snapshot (2025-07-01) of the session's `small_bank`, split in halves by customer: a 50-tree
LightGBM on the first half with the string features as pandas categories, isotonic calibration
on the second half, wrapped in a `FittedModel` whose `extra["reference"]` holds the training
half's typical values.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import lightgbm as lgb
import pandas as pd

from features.pipeline import build_snapshot_table
from features.spec import FeatureSpec
from keepwell.config import Config
from training.fitted import Calibrator, FittedModel
from training.reasons import REFERENCE_KEY, reference_values

AS_OF = date(2025, 7, 1)
PARAMS = {
    "objective": "binary",
    "num_leaves": 15,
    "learning_rate": 0.1,
    "min_data_in_leaf": 20,
    "num_threads": 1,
    "deterministic": True,
    "seed": 3,
    "verbose": -1,
}


_FRAMES: dict[Path, tuple[pd.DataFrame, FeatureSpec]] = {}
_MODELS: dict[tuple[Path, str], FittedModel] = {}


def feature_frame(bank: Path, config: Config) -> tuple[pd.DataFrame, FeatureSpec]:
    """The snapshot's features and labels as pandas, and the spec that built them (cached per
    bank folder: the session's bank and config never change)."""
    if bank not in _FRAMES:
        build = build_snapshot_table(bank, [AS_OF], config, labels=True)
        _FRAMES[bank] = (build.to_pyarrow().to_pandas(), build.spec)
    return _FRAMES[bank]


def small_model(bank: Path, config: Config, target: str = "churn") -> FittedModel:
    """The cached small model for `target`; callers must not modify it."""
    if (bank, target) not in _MODELS:
        _MODELS[bank, target] = _train(bank, config, target)
    return _MODELS[bank, target]


def _train(bank: Path, config: Config, target: str) -> FittedModel:
    frame, spec = feature_frame(bank, config)
    features = tuple(spec.names)
    strings = [f.name for f in spec if f.dtype == "string"]
    categories = {c: sorted(map(str, frame[c].dropna().unique())) for c in strings}
    train, calib = frame.iloc[::2], frame.iloc[1::2]
    model = FittedModel(target, None, Calibrator("platt"), features, categories)
    data = lgb.Dataset(model.matrix(train), label=train[target].astype(float).to_numpy())
    model.booster = lgb.train(PARAMS, data, num_boost_round=50)
    y = calib[target].astype(float).to_numpy()
    model.calibrator = Calibrator.fit(model.margin(calib), y, "isotonic")
    model.best_iteration = 50
    model.spec_version = spec.version
    model.extra = {REFERENCE_KEY: reference_values(train, features)}
    return model
