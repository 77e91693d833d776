"""`keepwell monitor` end to end on a copy of the serving workspace (its champions, online store
and bank), with the training window recorded the way `keepwell train` records it, and its
errors when the window, the champions or the data are missing."""

from __future__ import annotations

import json
import math
import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import cli.monitor  # noqa: F401  (registers `monitor` until cli.app imports it)
from cli.app import app

WINDOW = "2025-05-01..2025-07-01"
SECTIONS = {"schema", "generated_at", "as_of", "settings", "reference", "current", "data",
            "features", "scores", "top_n_stability", "recommendation", "summary", "notes",
            "plot", "mlflow", "seconds"}  # fmt: skip
SUMMARY = {"as_of", "recommendation", "max_feature_psi", "drifted_features", "score_psi",
           "top_n_mean_overlap"}  # fmt: skip


@pytest.fixture(autouse=True)
def _keep_experiment_env():
    """`setup_mlflow` (the monitoring run calls it) sets MLFLOW_EXPERIMENT_ID to an experiment
    of this test's store; put it back (the conftest restores the tracking URIs)."""
    saved = os.environ.get("MLFLOW_EXPERIMENT_ID")
    yield
    if saved is None:
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    else:
        os.environ["MLFLOW_EXPERIMENT_ID"] = saved


def _run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result, " ".join(result.output.split())  # rich wraps long lines


def _client(root):
    from mlflow import MlflowClient

    uri = f"sqlite:///{root}/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _list_day(root, day: str, lists: dict[str, list[str]]) -> None:
    folder = root / "lists" / day
    folder.mkdir(parents=True)
    for rm, ids in lists.items():
        table = pa.table(
            {"rank": range(1, len(ids) + 1), "customer_id": ids, "rm_id": [rm] * len(ids)}
        )
        pq.write_table(table, folder / f"{rm}.parquet")
    (folder / "summary.json").write_text(json.dumps({"date": day}))


@pytest.fixture
def trained_copy(serving_setup, tmp_path):
    """The serving workspace's registry and store in a fresh folder, the churn champion's run
    given the `split_train` params of a training run, and two consecutive list days."""
    from training.registry import CHAMPION, registered_name

    src, config = serving_setup.workspace, serving_setup.config
    root = tmp_path / "ws"
    root.mkdir()
    for name in ("mlflow.db", "mlflow.db-wal"):
        if (src.root / name).exists():
            shutil.copy2(src.root / name, root / name)
    store = root / config.paths.feature_store
    store.parent.mkdir(parents=True)
    shutil.copy2(src.path(config.paths.feature_store), store)
    config_file = tmp_path / "keepwell.yaml"
    config_file.write_text(f"mlflow:\n  tracking_uri: sqlite:///{root}/mlflow.db\n", "utf-8")
    client = _client(root)
    version = client.get_model_version_by_alias(registered_name(config, "churn"), CHAMPION)
    client.log_param(version.run_id, "split_train", WINDOW)
    client.log_param(version.run_id, "split_train_snapshots", "3")
    rm_a, rm_b = serving_setup.keys.rm_a_id, serving_setup.keys.rm_b_id
    _list_day(root, "2025-12-01", {rm_a: ["c1", "c2", "c3"], rm_b: ["d1", "d2"]})
    _list_day(root, "2025-12-02", {rm_a: ["c2", "c1", "c9"], rm_b: ["d3", "d4"]})
    return root, config_file


def test_monitor_writes_the_report_and_logs_an_mlflow_run(trained_copy, serving_setup):
    root, config_file = trained_copy
    result, out = _run("--workspace", root, "--config", config_file, "monitor")
    assert result.exit_code == 0, result.output
    report = json.loads((root / "reports" / "monitoring.json").read_text())
    assert set(report) == SECTIONS and set(report["summary"]) == SUMMARY
    assert {d["name"] for d in report["features"]} == set(_model_features(serving_setup))
    assert all(math.isfinite(d["psi"]) and d["psi"] >= 0 for d in report["features"])
    psis = [d["psi"] for d in report["features"]]
    assert psis == sorted(psis, reverse=True)
    assert {d["name"] for d in report["scores"]} == {"churn", "complaint"}
    ref = report["reference"]
    assert ref["dates"] == ["2025-05-01", "2025-06-01", "2025-07-01"]
    assert "param split_train of MLflow run" in ref["source"] and ref["rows"] > 3 * 1500
    assert report["current"]["source"].startswith("online store")
    stability = report["top_n_stability"]
    assert stability["status"] == "compared" and stability["dates"] == ["2025-12-01", "2025-12-02"]
    per_rm = {r["rm_id"]: r["overlap"] for r in stability["per_rm"]}
    expected = {serving_setup.keys.rm_a_id: 2 / 3, serving_setup.keys.rm_b_id: 0.0}
    assert per_rm == pytest.approx(expected, abs=1e-4)
    assert report["summary"]["top_n_mean_overlap"] == pytest.approx(1 / 3, abs=1e-4)
    decision = report["recommendation"]["decision"]
    assert report["summary"]["recommendation"] == decision in ("stable", "watch", "retrain")
    assert f"recommendation: {decision.upper()}" in out and "report ->" in out
    assert (root / "reports" / "monitoring.png").stat().st_size > 10_000

    client = _client(root)
    experiment = client.get_experiment_by_name("keepwell-monitoring")
    (run,) = client.search_runs([experiment.experiment_id])
    assert (
        run.info.run_id == report["mlflow"]["run_id"]
        and run.data.tags["recommendation"] == decision
    )
    for d in report["features"]:
        assert run.data.metrics[f"psi.feature.{d['name']}"] == pytest.approx(d["psi"], abs=1e-6)
    for d in report["scores"]:
        assert run.data.metrics[f"psi.score.{d['name']}"] == pytest.approx(d["psi"], abs=1e-6)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"monitoring.json", "monitoring.png"}


def _model_features(serving_setup) -> list[str]:
    from tests.training._models import small_model

    bank, config = serving_setup.bank, serving_setup.config
    return [f for t in ("churn", "complaint") for f in small_model(bank, config, t).features]


def test_a_given_reference_and_as_of_build_both_sides_from_the_data(trained_copy):
    root, config_file = trained_copy
    result, _ = _run("--workspace", root, "--config", config_file, "monitor", "--as-of",
                     "2025-10-01", "--reference", "2025-06-01..2025-07-01")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((root / "reports" / "monitoring.json").read_text())
    assert report["as_of"] == "2025-10-01" and report["current"]["source"].startswith("built from")
    assert report["reference"]["dates"] == ["2025-06-01", "2025-07-01"]


def test_monitor_explains_what_is_missing(serving_setup, tmp_path):
    ws = serving_setup.workspace
    result, out = _run("--workspace", ws.root, "--config", serving_setup.config_file, "monitor")
    assert result.exit_code == 1
    assert "records no training window" in out and "--reference FIRST..LAST" in out
    assert not (ws.reports / "monitoring.json").exists()

    result, out = _run("--workspace", tmp_path / "empty", "monitor")
    assert result.exit_code == 1 and "no model registry" in out and "keepwell train" in out

    bad = ("monitor", "--reference", WINDOW, "--data", tmp_path / "nowhere")
    result, out = _run("--workspace", ws.root, "--config", serving_setup.config_file, *bad)
    assert result.exit_code == 1 and "does not exist" in out
