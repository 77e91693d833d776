"""Configuration: defaults load into frozen typed objects; bad files are named errors."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cli.app import app
from keepwell.config import ConfigError, load_config


def test_defaults_load_frozen_and_typed():
    cfg = load_config()
    assert cfg.labels.horizon_days == 90
    assert cfg.features.windows_days == (30, 90, 180)
    assert cfg.policy.first_callback_days == 7 and cfg.policy.complaint_resolution_working_days == 7
    assert dt.date(2025, 12, 25) in cfg.policy.holidays
    assert cfg.tiers.value_cut_points.priority < cfg.tiers.value_cut_points.vip
    with pytest.raises(ValidationError):
        cfg.labels.horizon_days = 30  # frozen


def test_user_file_is_merged_key_by_key(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("labels:\n  horizon_days: 60\npolicy:\n  holidays: [2025-12-26]\n")
    cfg = load_config(f)
    assert cfg.labels.horizon_days == 60
    assert cfg.labels.churn.aum_drop_fraction == 0.8  # untouched sibling kept
    assert cfg.policy.holidays == (dt.date(2025, 12, 26),)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("labels:\n  horizon_dayz: 60\n", "labels.horizon_dayz: unknown key"),
        ("demo:\n  customers: many\n", "demo.customers"),
        ("features:\n  engine: pandas\n", "features.engine"),
        ("tiers:\n  value_cut_points: {vip: 0.5, priority: 0.8}\n", "tiers.value_cut_points"),
        ("nonsense: 1\n", "nonsense: unknown key"),
        ("demo:\n  start: 2024-01-15\n", "first day of a month"),
    ],
)
def test_bad_files_name_the_key(tmp_path, text, named):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert named in str(err.value)
    assert str(f) in str(err.value)


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    f = tmp_path / "broken.yaml"
    f.write_text("labels: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f)


def test_cli_reports_a_bad_config_and_writes_nothing(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("demo:\n  seeed: 3\n")
    ws = tmp_path / "ws"
    result = CliRunner().invoke(app, ["--workspace", str(ws), "--config", str(f), "demo-data"])
    assert result.exit_code == 2
    assert "demo.seeed: unknown key" in result.output
    assert not ws.exists()


def test_every_command_has_help():
    runner = CliRunner()
    assert runner.invoke(app, ["--help"]).exit_code == 0
    paths = [[c.name] for c in app.registered_commands]
    for group in app.registered_groups:
        paths += [[group.name, c.name] for c in group.typer_instance.registered_commands]
    flat = {" ".join(p) for p in paths}
    assert {"demo-data", "validate", "features build", "features materialize"} <= flat
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "--config" in result.output and "--workspace" in result.output, path
