"""Promotion rules and the registry aliases they move (a real SQLite registry in tmp)."""

from __future__ import annotations

import mlflow
import pytest

from keepwell.config import load_config
from keepwell.workspace import Workspace
from training.registry import (
    CHALLENGER,
    CHAMPION,
    RegistryError,
    alias_version,
    apply_promotion,
    decide_promotion,
    require_alias,
    set_alias,
    setup_mlflow,
)

RULES = load_config().training.promotion  # roc_auc_tolerance 0.005, calibration_tolerance 0.01


def metrics(auc: float, ece: float) -> dict[str, float]:
    return {"roc_auc": auc, "ece": ece}


def test_first_model_becomes_champion():
    d = decide_promotion("churn", "m", ("1", metrics(0.70, 0.02)), None, RULES)
    assert d.promote and d.champion is None and "first champion" in d.reason


def test_small_auc_loss_within_tolerance_is_promoted():
    d = decide_promotion("churn", "m", ("2", metrics(0.697, 0.02)), ("1", metrics(0.70, 0.02)),
                         RULES)  # fmt: skip
    assert d.promote, d.reason
    assert "replaces champion v1" in d.reason and "0.6970" in d.reason


def test_auc_loss_beyond_tolerance_keeps_the_champion():
    d = decide_promotion("churn", "m", ("2", metrics(0.690, 0.02)), ("1", metrics(0.70, 0.02)),
                         RULES)  # fmt: skip
    assert not d.promote
    assert "ROC-AUC lower by 0.0100" in d.reason and "kept champion v1" in d.reason


def test_worse_calibration_keeps_the_champion_even_with_better_auc():
    d = decide_promotion("churn", "m", ("2", metrics(0.72, 0.05)), ("1", metrics(0.70, 0.02)),
                         RULES)  # fmt: skip
    assert not d.promote
    assert "calibration error higher by 0.0300" in d.reason


def test_same_version_is_not_promoted_again():
    d = decide_promotion("churn", "m", ("1", metrics(0.7, 0.02)), ("1", metrics(0.7, 0.02)), RULES)
    assert not d.promote and "already is the champion" in d.reason


@pytest.fixture
def registry(tmp_path):
    """A workspace registry with one model of two versions (no artifacts needed for aliases)."""
    config = load_config()
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    setup_mlflow(Workspace.open(tmp_path, config))
    client = mlflow.MlflowClient()
    client.create_registered_model("kw-test")
    for _ in range(2):
        client.create_model_version("kw-test", source=str(tmp_path))
    yield "kw-test"
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


def test_apply_moves_the_champion_alias_only_when_promoting(registry):
    with pytest.raises(RegistryError, match="keepwell train"):
        require_alias(registry, CHALLENGER)
    set_alias(registry, CHAMPION, "1")
    set_alias(registry, CHALLENGER, "2")
    kept = decide_promotion("churn", registry, ("2", metrics(0.60, 0.02)),
                            ("1", metrics(0.70, 0.02)), RULES)  # fmt: skip
    apply_promotion(kept)
    assert alias_version(registry, CHAMPION) == "1"
    promoted = decide_promotion("churn", registry, ("2", metrics(0.70, 0.02)),
                                ("1", metrics(0.70, 0.02)), RULES)  # fmt: skip
    apply_promotion(promoted)
    assert alias_version(registry, CHAMPION) == "2"
    tags = mlflow.MlflowClient().get_model_version(registry, "2").tags
    assert "replaces champion v1" in tags["promotion"]
