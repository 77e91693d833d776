"""Training fixtures: the 20,000-customer demo bank of the model tier and the small bank's
training rows (both built once per session, read-only for tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from keepwell.demo import generate
from training.dataset import TrainingData, load_training_data

BANK_20K = {"customers": 20_000, "months": 24, "seed": 5}


@pytest.fixture(scope="session")
def bank_20k(tmp_path_factory, config) -> Path:
    """The demo bank the quality floors are judged on: 20,000 customers x 24 months."""
    out = tmp_path_factory.mktemp("bank20k") / "demo"
    demo = config.demo.model_copy(update=BANK_20K)
    generate(demo, config, out, console=Console(quiet=True))
    return out


@pytest.fixture(scope="session")
def training_20k(bank_20k, config) -> TrainingData:
    return load_training_data(bank_20k, config)


@pytest.fixture(scope="session")
def small_training(small_bank, config) -> TrainingData:
    """Labelled snapshots of the 3,000-customer bank (default snapshots and split)."""
    return load_training_data(small_bank, config)
