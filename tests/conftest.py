"""Shared fixtures: one small demo bank per test session (generated once, read-only for tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from keepwell.config import load_config
from keepwell.demo import generate
from keepwell.privacy import disable_telemetry

SMALL_BANK = {"customers": 3000, "months": 24, "seed": 11}


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
