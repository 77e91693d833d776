"""A damaged or missing model file stops start-up with one line naming the model, version and
file (LightGBM's noise captured); a copied workspace loads its own model files, not the
original's."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from keepwell.config import load_config
from keepwell.workspace import Workspace
from serving.scoring.loading import load_champion, registry_uri
from serving.scoring.model import ServingSetupError


@pytest.fixture
def copy(serving_setup, tmp_path):
    """`cp -r ws ws2`: a whole copy of the serving workspace with its registry at its default
    place (`<ws2>/mlflow.db`, which still names the original's absolute artifact paths)."""
    root = tmp_path / "ws2"
    shutil.copytree(serving_setup.workspace.root, root)
    config_file = tmp_path / "keepwell.yaml"
    config_file.write_text(f"mlflow:\n  tracking_uri: sqlite:///{root}/mlflow.db\n", "utf-8")
    config = load_config(config_file)
    return Workspace.open(root, config), config_file, serving_setup.workspace.root


def _model_dir(ws: Workspace, original: Path, name: str = "keepwell-churn") -> Path:
    """The copy's folder of `name` version 1: the registry's path with the root swapped."""
    conn = sqlite3.connect(ws.root / "mlflow.db")
    (stored,) = conn.execute(
        "SELECT storage_location FROM model_versions WHERE name = ? AND version = 1", [name]
    ).fetchone()
    conn.close()
    return Path(stored.removeprefix("file://").replace(str(original), str(ws.root)))


def _load(ws: Workspace, target: str = "churn"):
    return load_champion(target, ws.config, registry_uri(ws), ws)


def test_a_copy_loads_its_own_files_and_damaging_them_leaves_the_original_alone(
    copy, serving_setup, capfd
):
    ws2, _, original = copy
    folder = _model_dir(ws2, original)
    assert ws2.root in folder.parents  # the copy's own folder
    assert _load(ws2).version == "1"  # intact: the copy's files load
    booster = folder / "artifacts" / "fitted" / "booster.txt"
    booster.write_text(booster.read_text()[:200])  # truncated
    capfd.readouterr()
    with pytest.raises(ServingSetupError) as err:
        _load(ws2)
    message = str(err.value)
    assert "keepwell-churn version 1" in message and str(booster) in message
    assert "\n" not in message
    out, errors = capfd.readouterr()
    assert "LightGBM" not in out + errors  # its own output is captured
    original = serving_setup.workspace
    assert _load(original).version == "1"  # the original is untouched and still loads


@pytest.mark.parametrize(
    "damage, file",
    [
        ("garbled json", "artifacts/fitted/model.json"),
        ("bad spec json", "artifacts/spec.json"),
        ("missing", "artifacts/fitted/booster.txt"),
    ],
)
def test_a_damaged_model_file_is_one_line_naming_model_version_and_file(copy, damage, file):
    ws2, _, original = copy
    path = _model_dir(ws2, original, "keepwell-complaint") / file
    if damage == "missing":
        path.unlink()
    else:
        path.write_text(path.read_text()[:-40] + "}{,", encoding="utf-8")
    with pytest.raises(ServingSetupError) as err:
        _load(ws2, "complaint")
    message = str(err.value)
    assert "keepwell-complaint version 1" in message and str(path) in message, message
    assert "\n" not in message


def test_a_copy_without_its_artifacts_is_refused_clearly(copy):
    ws2, _, original = copy
    shutil.rmtree(_model_dir(ws2, original).parent)
    with pytest.raises(ServingSetupError, match="not in this workspace"):
        _load(ws2)


def test_serve_and_plan_exit_1_with_the_line(copy):
    ws2, config_file, original = copy
    booster = _model_dir(ws2, original) / "artifacts" / "fitted" / "booster.txt"
    booster.write_bytes(b"\x00garbage\xff" * 10)
    base = ["--workspace", str(ws2.root), "--config", str(config_file)]
    for command in (["serve", "--port", "1"], ["plan"]):
        result = CliRunner().invoke(app, [*base, *command])
        assert result.exit_code == 1, result.output
        text = result.output.replace("\n", " ")
        assert "keepwell-churn version 1" in text and "booster.txt" in text, text
        assert "Traceback" not in result.output


def test_promotion_and_evaluation_in_a_copy_read_the_copys_files(copy, serving_setup):
    """`registered_probabilities` (what evaluate and promote score with) follows the copy."""
    import os

    from tests.fixtures.serving import MLFLOW_ENV, restore_env
    from tests.training._models import feature_frame
    from training.registered import registered_probabilities
    from training.registry import setup_mlflow

    ws2, _, original = copy
    frame, _ = feature_frame(serving_setup.bank, serving_setup.config)
    saved = {k: os.environ.get(k) for k in (*MLFLOW_ENV, "MLFLOW_EXPERIMENT_ID")}
    try:
        setup_mlflow(ws2)
        before = registered_probabilities("keepwell-churn", "1", frame.head(50), ws2)
        assert before.shape == (50,)
        booster = _model_dir(ws2, original) / "artifacts" / "fitted" / "booster.txt"
        booster.write_text(booster.read_text()[:200])  # damage the copy only
        with pytest.raises(Exception):  # noqa: B017 - LightGBM's or MLflow's own error
            registered_probabilities("keepwell-churn", "1", frame.head(50), ws2)
    finally:
        restore_env(saved)
