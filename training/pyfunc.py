"""One self-contained MLflow model per target: booster, calibrator, reason texts, no pickle.

The logged model holds

* `artifacts/fitted/` - `FittedModel.save` (LightGBM's text `booster.txt` + `model.json` with the
  calibrator, the feature order, the category levels and the book's typical values);
* `artifacts/spec.json` - `spec.records()` of every feature (templates, comparisons, missing-value
  sentences) plus `never_as_reason` and `top_k`: everything `explain` needs to speak;
* `code/` - copies of the `training` and `keepwell` packages, so the model loads where Keepwell
  is not installed; loading imports only `training.{pyfunc,fitted,reasons,reason_texts}` and
  `keepwell.io`, nothing from `features` (or Ibis, DuckDB);
* a tiny generated entry script (MLflow "models from code"), so the Python model is rebuilt by
  importing `training.pyfunc`, never unpickled.

`predict` returns calibrated probabilities, one per input row (column `probability`); with the
parameter `reasons=True` also `margin` and `reasons` (a JSON list of `Reason` dicts per row).
Serving that wants one TreeSHAP pass per request uses `load_model(uri).unwrap_python_model()`,
whose `.fitted` (a `FittedModel`) and `.texts` (`ReasonTexts`) are the same objects `predict`
uses.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

import keepwell.io as keepwell_io
import training.fitted as fitted_module
from keepwell.io import write_text
from training.fitted import FittedModel
from training.reasons import ReasonTexts, explain

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

    from features.spec import FeatureSpec
    from keepwell.config import Config

FITTED_ARTIFACT = "fitted"
SPEC_ARTIFACT = "spec"
SPEC_FILE = "spec.json"
ENTRY_FILE = "keepwell_model.py"
EXAMPLE_ROWS = 5
PINNED = ("lightgbm", "pandas", "numpy", "scikit-learn", "mlflow")

ENTRY_SOURCE = '''"""MLflow models-from-code entry: the Keepwell model, built by import."""

import mlflow

from training.pyfunc import KeepwellModel

mlflow.models.set_model(KeepwellModel())
'''


class KeepwellModel(mlflow.pyfunc.PythonModel):
    """The pyfunc: `load_context` reads the artifacts, `predict` scores a feature frame."""

    def __init__(self, fitted: FittedModel | None = None, texts: ReasonTexts | None = None):
        self.fitted = fitted
        self.texts = texts

    def load_context(self, context: Any) -> None:
        self.fitted = FittedModel.load(context.artifacts[FITTED_ARTIFACT])
        spec_path = Path(context.artifacts[SPEC_ARTIFACT])
        self.texts = ReasonTexts.from_dict(json.loads(spec_path.read_text("utf-8")))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        reasons = bool((params or {}).get("reasons", False))
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.score(frame, reasons=reasons)

    def score(self, frame: pd.DataFrame, *, reasons: bool = False) -> pd.DataFrame:
        """`probability` per row (`FittedModel.predict_proba`: `training.fitted.probabilities`,
        the one probability path); with `reasons`, also `margin` (LightGBM's raw score) and
        `reasons` (JSON text). TreeSHAP runs only when reasons are asked for."""
        fitted, texts = self._parts()
        missing = [c for c in fitted.features if c not in frame.columns]
        if missing:
            raise KeyError(
                f"the keepwell {fitted.target} model needs feature column(s) {missing}; "
                f"the input has {len(frame.columns)} column(s): {list(frame.columns)[:10]}"
            )
        out = pd.DataFrame(
            {"probability": np.asarray(fitted.predict_proba(frame), dtype="float64")},
            index=frame.index,
        )
        if reasons:
            explained = explain(
                fitted,
                frame,
                texts,
                top_k=texts.top_k,
                never_as_reason=texts.never_as_reason,
            )
            out["margin"] = fitted.margin(frame)
            out["reasons"] = [json.dumps([r.to_dict() for r in row]) for row in explained]
        return out

    def _parts(self) -> tuple[FittedModel, ReasonTexts]:
        if self.fitted is None or self.texts is None:
            raise RuntimeError(
                "KeepwellModel has no fitted model or reason texts: load it with "
                "mlflow.pyfunc.load_model(...) or construct it with both"
            )
        return self.fitted, self.texts


def example_input(
    fitted: FittedModel, frame: pd.DataFrame, texts: ReasonTexts, rows: int = EXAMPLE_ROWS
) -> pd.DataFrame:
    """The first `rows` rows of the model's features, typed as `input_schema` expects: float64
    features as float64, int64 features as they come (int64, or float64 with nulls), booleans as
    booleans, strings and categories as object columns of str."""
    missing = [c for c in fitted.features if c not in frame.columns]
    if missing:
        raise KeyError(f"the input example lacks feature column(s) {missing}")
    head = frame.loc[:, list(fitted.features)].head(rows).reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    for name in fitted.features:
        col, dtype = head[name], texts[name].dtype
        if dtype == "boolean":
            out[name] = col.astype(bool) if col.notna().all() else col.astype(object)
        elif dtype == "string" or name in fitted.categories:
            out[name] = col.astype(object).map(lambda v: None if pd.isna(v) else str(v))
        elif dtype == "float64":
            out[name] = pd.to_numeric(col, errors="raise").astype("float64")
        else:
            out[name] = pd.to_numeric(col, errors="raise")
    return pd.DataFrame(out)


def input_schema(fitted: FittedModel, texts: ReasonTexts) -> Schema:
    """The signature's inputs, from the spec's types rather than five example rows.

    Every model feature is a required column. float64 features are `double`, booleans `boolean`,
    strings and categories `string`. int64 features are `Any`: a feature frame carries them as
    int64 when a batch has no nulls and as float64 when it has some, and MLflow's schema check
    refuses int64 input for a `double` column and float64 input for a `long` one; the model's
    own `FittedModel.matrix` checks them (numeric or null) instead.
    """
    types = {"float64": DataType.double, "boolean": DataType.boolean, "string": DataType.string}
    cols = []
    for name in fitted.features:
        dtype = "string" if name in fitted.categories else texts[name].dtype
        cols.append(ColSpec(types[dtype] if dtype in types else AnyType(), name, required=True))
    return Schema(cols)


def pip_requirements() -> list[str]:
    """The serving environment, pinned to what trained the model."""
    return [f"{name}=={version(name)}" for name in PINNED]


def stage_code(folder: Path) -> list[str]:
    """Copy the packages the model imports at load time into `folder`; returns the code paths.

    `training` and the `keepwell` core whole (Python files only; together under 300 KB; the CLI
    is a package of its own and is not copied). Loading imports only `training.pyfunc`,
    `training.fitted`, `training.reasons` (with `training.reason_texts`) and `keepwell.io`, none
    of which import `features`, Ibis or DuckDB. Whole packages rather than those files because
    MLflow puts the model's `code/` first on `sys.path`: a partial `keepwell` there would hide
    the installed one's other modules from a process that imports them later. The packages are
    found from a module's file: under pytest `training` can resolve as a namespace package
    without `__file__`.
    """
    paths = []
    for module in (fitted_module, keepwell_io):
        src = Path(module.__file__).parent
        dst = folder / src.name
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        paths.append(str(dst))
    return paths


def log_model(
    fitted: FittedModel,
    spec: FeatureSpec | ReasonTexts,
    config: Config,
    *,
    name: str,
    registered_model_name: str | None = None,
    input_example: pd.DataFrame,
) -> ModelInfo:
    """Log `fitted` as a self-contained pyfunc under `name` (in the active run, if any) and
    register it as `registered_model_name` when given. `input_example` is any feature frame with
    the model's columns; its first rows become the example and the signature's input schema."""
    policy = {"never_as_reason": list(config.reasons.never_as_reason),
              "top_k": config.reasons.top_k}  # fmt: skip
    if isinstance(spec, ReasonTexts):
        document = {**spec.to_dict(), **policy}
    else:  # the full declarative records, so the artifact documents the features it expects
        document = {"spec_version": spec.version, **policy, "features": spec.records()}
    texts = ReasonTexts.from_dict(document)
    undescribed = [f for f in fitted.features if f not in texts]
    if undescribed:
        raise KeyError(f"the feature spec has no words for model feature(s) {undescribed}")
    example = example_input(fitted, input_example, texts)
    output = KeepwellModel(fitted, texts).score(example, reasons=True)
    inferred = mlflow.models.infer_signature(None, output, params={"reasons": False})
    signature = ModelSignature(input_schema(fitted, texts), inferred.outputs, inferred.params)
    with tempfile.TemporaryDirectory(prefix="keepwell-model-") as tmp:
        root = Path(tmp)
        fitted.save(root / FITTED_ARTIFACT)
        write_text(root / SPEC_FILE, json.dumps(document, indent=2, default=str))
        write_text(root / ENTRY_FILE, ENTRY_SOURCE)
        code_paths = stage_code(root / "code")
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(root / ENTRY_FILE),
            artifacts={
                FITTED_ARTIFACT: str(root / FITTED_ARTIFACT),
                SPEC_ARTIFACT: str(root / SPEC_FILE),
            },
            code_paths=code_paths,
            signature=signature,
            input_example=example,
            registered_model_name=registered_model_name,
            pip_requirements=pip_requirements(),
        )
