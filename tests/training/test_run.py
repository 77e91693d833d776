"""The training job's own checks, before any model is fitted."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import training.dataset
from training.dataset import TrainingData
from training.run import prepare
from training.split import SplitError


def test_one_snapshot_data_is_sent_to_cross_validation(monkeypatch, config, tmp_path):
    """A one-row-per-customer table (e.g. the telco mapping) has no time axis to split."""
    day = dt.date(2020, 2, 1)
    frame = pd.DataFrame({"customer_id": ["a", "b"], "as_of": [day, day], "x": [1.0, 2.0],
                          "churn": [0, 1]})  # fmt: skip
    data = TrainingData(frame, ("x",), (), None, (day,), day, "hash")
    monkeypatch.setattr(training.dataset, "load_training_data", lambda *a, **k: data)
    with pytest.raises(SplitError, match=r"single snapshot .*crossval_bench"):
        prepare(tmp_path, config)
