"""The MLflow model: logged, registered, loaded back by name, and scoring like the FittedModel."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc.scoring_server import invocations
from mlflow.types.schema import AnyType, DataType

from tests.training._models import feature_frame, small_model
from training.pyfunc import KeepwellModel, log_model, pip_requirements
from training.reasons import explain

NAME = "keepwell-churn-test"


@pytest.fixture(scope="module")
def registered(small_bank, config, tmp_path_factory):
    """Log and register the small churn model in a throw-away SQLite store; restore the URIs."""
    model = small_model(small_bank, config)
    frame, spec = feature_frame(small_bank, config)
    tmp = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{tmp}/mlflow.db"
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        experiment = mlflow.create_experiment("pyfunc-test", artifact_location=(tmp / "a").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = log_model(
                model, spec, config, name="churn", registered_model_name=NAME, input_example=frame
            )
        loaded = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
        yield {"model": model, "frame": frame, "spec": spec, "info": info, "loaded": loaded,
               "uri": uri, "tmp": tmp}  # fmt: skip
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def test_predict_returns_the_calibrated_probabilities(registered):
    model, frame, loaded = registered["model"], registered["frame"], registered["loaded"]
    out = loaded.predict(frame)
    assert list(out.columns) == ["probability"]
    assert out["probability"].dtype == np.float64
    assert out.index.equals(frame.index)
    np.testing.assert_allclose(out["probability"], model.predict_proba(frame), rtol=0, atol=1e-12)
    p = out["probability"].to_numpy()
    assert ((p > 0) & (p < 1)).mean() > 0.9  # probabilities, not 0/1 labels
    assert len(np.unique(p)) > 10


def test_reasons_on_request_match_explain(registered, config):
    model, frame, spec = registered["model"], registered["frame"], registered["spec"]
    sample = frame.head(300)
    out = registered["loaded"].predict(sample, params={"reasons": True})
    assert list(out.columns) == ["probability", "margin", "reasons"]
    np.testing.assert_allclose(out["margin"], model.margin(sample), rtol=0, atol=1e-12)
    expected = explain(
        model, sample, spec, top_k=config.reasons.top_k,
        never_as_reason=config.reasons.never_as_reason,
    )  # fmt: skip
    got = [json.loads(text) for text in out["reasons"]]
    assert got == [[r.to_dict() for r in row] for row in expected]
    assert sum(map(len, got)) > len(sample)


def test_int_or_float_inputs_for_integer_features_are_accepted(registered):
    frame, loaded = registered["frame"], registered["loaded"]
    sample = frame.head(20).copy()
    as_float = sample.assign(txn_count_30d=sample["txn_count_30d"].astype("float64"))
    as_float.loc[sample.index[0], "txn_count_30d"] = np.nan
    as_int = sample.assign(txn_count_30d=sample["txn_count_30d"].astype("int64"))
    assert loaded.predict(as_int)["probability"].notna().all()
    assert loaded.predict(as_float)["probability"].notna().all()


def test_the_serving_json_path_accepts_plain_json_numbers(registered):
    """The `mlflow models serve` request handler with JSON ints for a double feature, a null for
    an integer feature, and the reasons parameter."""
    model, frame = registered["model"], registered["frame"]
    sample = frame.head(3).reset_index(drop=True)
    columns = list(model.features)
    rows = sample[columns].astype(object).where(sample[columns].notna(), None).values.tolist()
    for row in rows:
        row[columns.index("aum_latest")] = round(row[columns.index("aum_latest")])
        row[columns.index("txn_count_30d")] = None
    request = {"dataframe_split": {"columns": columns, "data": rows}, "params": {"reasons": True}}
    loaded = registered["loaded"]
    response = invocations(
        json.dumps(request), "application/json", loaded, loaded.metadata.get_input_schema()
    )
    assert response.status == 200, response.response
    out = pd.DataFrame(json.loads(response.response)["predictions"])
    expected = sample.assign(aum_latest=sample["aum_latest"].round(), txn_count_30d=np.nan)
    np.testing.assert_allclose(out["probability"], model.predict_proba(expected), atol=1e-12)
    assert sum(len(json.loads(text)) for text in out["reasons"]) > 0


def test_the_unwrapped_model_exposes_booster_and_texts(registered, config):
    unwrapped = registered["loaded"].unwrap_python_model()
    assert isinstance(unwrapped, KeepwellModel)
    assert unwrapped.fitted.features == registered["model"].features
    assert unwrapped.fitted.extra["reference"] == registered["model"].extra["reference"]
    assert unwrapped.texts.top_k == config.reasons.top_k
    assert unwrapped.texts.never_as_reason == tuple(config.reasons.never_as_reason)
    contrib = unwrapped.fitted.contributions(registered["frame"].head(5))
    assert contrib.shape == (5, len(unwrapped.fitted.features) + 1)


def test_missing_feature_columns_are_named(registered):
    frame = registered["frame"].head(5)
    with pytest.raises(Exception, match="segment"):
        registered["loaded"].predict(frame.drop(columns=["segment"]))
    unwrapped = registered["loaded"].unwrap_python_model()
    with pytest.raises(KeyError, match=r"\['tenure_days', 'segment'\]"):
        unwrapped.predict(None, frame.drop(columns=["segment", "tenure_days"]))


def test_signature_example_and_artifact_contents(registered):
    info = registered["info"]
    signature = info.signature
    params = {p.name: p for p in signature.params.params}
    assert params["reasons"].dtype == DataType.boolean and params["reasons"].default is False
    inputs = {c.name: c for c in signature.inputs.inputs}
    assert list(inputs) == list(registered["model"].features)
    assert inputs["txn_amount_30d"].type == DataType.double
    assert isinstance(inputs["txn_count_30d"].type, AnyType)
    assert inputs["segment"].type == DataType.string
    assert inputs["is_elderly"].type == DataType.boolean
    assert [c.name for c in signature.outputs.inputs] == ["probability", "margin", "reasons"]

    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert not [f for f in files if f.endswith((".pkl", ".pickle"))]
    assert {"artifacts/fitted/booster.txt", "artifacts/fitted/model.json",
            "artifacts/spec.json", "code/training/pyfunc.py", "code/training/fitted.py",
            "code/keepwell/io.py"} <= files  # fmt: skip
    assert not [f for f in files if f.startswith("code/features")]
    spec_doc = json.loads((local / "artifacts/spec.json").read_text())
    assert {"never_as_reason", "top_k", "features", "spec_version"} <= set(spec_doc)
    assert spec_doc["features"][0]["formula"]  # the full declarative records
    example = json.loads((local / "input_example.json").read_text())
    assert len(example["data"]) == 5
    requirements = (local / "requirements.txt").read_text().split()
    assert set(pip_requirements()) <= set(requirements)
    assert any(r.startswith("lightgbm==") for r in requirements)


def test_the_model_loads_without_the_project_installed(registered):
    """A fresh interpreter that cannot import the project still loads and scores the model,
    from the code bundled in the artifact, without touching `features`."""
    sample = registered["frame"].head(50)
    data = registered["tmp"] / "sample.parquet"
    sample.to_parquet(data)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/1"))
    script = textwrap.dedent(f"""
        import json, sys
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
        sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/work/main")]
        import mlflow, pandas as pd
        model = mlflow.pyfunc.load_model({str(local)!r})
        out = model.predict(pd.read_parquet({str(data)!r}), params={{"reasons": True}})
        import training
        print(json.dumps({{"training": training.__file__,
                          "heavy": sorted({{"features", "ibis", "duckdb"}} & set(sys.modules)),
                          "p": out["probability"].tolist(), "reasons": out["reasons"].tolist()}}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=registered["tmp"], capture_output=True, text=True,
        timeout=120, env={"PATH": "/usr/bin:/bin", "DO_NOT_TRACK": "1",
                          "MLFLOW_DISABLE_TELEMETRY": "true", "HOME": str(registered["tmp"])},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "/code/training/__init__.py" in result["training"]
    assert result["heavy"] == []
    local = registered["loaded"].predict(sample, params={"reasons": True})
    np.testing.assert_allclose(result["p"], local["probability"], rtol=0, atol=1e-12)
    assert result["reasons"] == local["reasons"].tolist()


def test_score_without_loaded_parts_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no fitted model"):
        KeepwellModel().predict(None, pd.DataFrame({"x": [1]}))
