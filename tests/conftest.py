"""Shared fixtures: one small demo bank per test session (generated once, read-only for tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from keepwell.config import load_config
from keepwell.demo import generate
from keepwell.privacy import disable_telemetry

SMALL_BANK = {"customers": 3000, "months": 24, "seed": 11}
# Session fixtures shared across the tree: the served workspace (tests/fixtures/serving.py) and
# the model tier's 20,000-customer bank (tests/fixtures/training.py).
pytest_plugins = ("tests.fixtures.serving", "tests.fixtures.training")

# The test tiers (DESIGN.md section 5): code (fast units, unmarked), data (schemas and
# point-in-time properties) and model (quality floors on the demo bank); `-m data`, `-m model`
# or `-m "not data and not model"` selects one.
DATA_TIER = (
    "tests/keepwell/test_contract.py",
    "tests/features/test_point_in_time.py",
    "tests/features/test_golden.py",
    "tests/features/test_mapping.py",
    "tests/serving/scoring/test_schemas.py",
    "tests/serving/planning/test_list_format.py",
)
MODEL_FIXTURES = {"bank_20k", "training_20k"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark the data and model tiers before `-m` selects (the model tier: every test on the
    20,000-customer bank, plus those marked `model` in their module)."""
    root = Path(str(config.rootpath))
    for item in items:
        where = Path(str(item.path)).relative_to(root).as_posix()
        if where in DATA_TIER:
            item.add_marker(pytest.mark.data)
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


def pytest_configure(config):
    """The test session is an entry point: telemetry off before any test module imports MLflow."""
    disable_telemetry()


@pytest.fixture(scope="session")
def config():
    return load_config()


@pytest.fixture(scope="session")
def small_bank(tmp_path_factory, config) -> Path:
    """A 3,000-customer, 24-month demo bank (a few seconds to build)."""
    out = tmp_path_factory.mktemp("bank") / "demo"
    demo = config.demo.model_copy(update=SMALL_BANK)
    generate(demo, config, out, console=Console(quiet=True))
    return out
