"""The callback effect model as an MLflow pyfunc: what loading a registered effect model imports.

`EffectPyfunc` needs only `training.effect.model` (and through it LightGBM), so a logged model
loads with the `training` and `keepwell` code it carries (`training.pyfunc.stage_code`) and
nothing else of ours; `log_effect_model` logs and registers one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

from keepwell.io import write_text
from training.effect.model import EffectModel
from training.pyfunc import pip_requirements, stage_code

EFFECT_ARTIFACT = "effect"
ENTRY_FILE = "keepwell_effect_model.py"
ENTRY_SOURCE = '''"""MLflow models-from-code entry: the Keepwell callback effect model."""

import mlflow

from training.effect.pyfunc import EffectPyfunc

mlflow.models.set_model(EffectPyfunc())
'''


class EffectPyfunc(mlflow.pyfunc.PythonModel):
    """The pyfunc: `load_context` reads the boosters, `predict` returns column `effect`."""

    def __init__(self, model: EffectModel | None = None):
        self.model = model

    def load_context(self, context: Any) -> None:
        self.model = EffectModel.load(context.artifacts[EFFECT_ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.model is None:
            raise RuntimeError("EffectPyfunc has no model: load it with mlflow.pyfunc.load_model")
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return pd.DataFrame({"effect": self.model.predict(frame)}, index=frame.index)


def example_frame(model: EffectModel, frame: pd.DataFrame) -> pd.DataFrame:
    head = frame.loc[:, list(model.features)].head(5).reset_index(drop=True)
    for name in model.features:
        if name in model.categories:
            head[name] = head[name].astype(object).map(lambda v: None if pd.isna(v) else str(v))
    return head


def log_effect_model(model: EffectModel, example: pd.DataFrame, *, name: str) -> Any:
    """Log the model as a models-from-code pyfunc (boosters as text, code copied; no pickle) in
    the active run and register it as `name`."""
    inputs = Schema(
        [
            ColSpec(DataType.string if f in model.categories else AnyType(), f, required=True)
            for f in model.features
        ]
    )
    outputs = Schema([ColSpec(DataType.double, "effect")])
    with tempfile.TemporaryDirectory(prefix="keepwell-effect-") as tmp:
        root = Path(tmp)
        model.save(root / EFFECT_ARTIFACT)
        write_text(root / ENTRY_FILE, ENTRY_SOURCE)
        return mlflow.pyfunc.log_model(
            name="effect_model",
            python_model=str(root / ENTRY_FILE),
            artifacts={EFFECT_ARTIFACT: str(root / EFFECT_ARTIFACT)},
            code_paths=stage_code(root / "code"),
            signature=ModelSignature(inputs, outputs),
            input_example=example,
            registered_model_name=name,
            pip_requirements=pip_requirements(),
        )
