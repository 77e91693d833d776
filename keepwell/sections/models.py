"""Training, the callback effect model, KPI targets, monitoring, simulation, reasons."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from keepwell.sections import Section


class KpiTargets(Section):
    callback_completion: float = Field(default=0.95, gt=0, le=1)
    complaint_first_response: float = Field(default=0.95, gt=0, le=1)
    complaint_resolution: float = Field(default=0.95, gt=0, le=1)
    complaint_rate_change: float = Field(default=-0.20, ge=-1, le=1)
    churn_rate_change: float = Field(default=-0.20, ge=-1, le=1)
    satisfaction: float = Field(default=0.90, gt=0, le=1)
    satisfied_from: int = Field(default=4, ge=1, le=5)  # a survey score this high is satisfied


class Kpi(Section):
    targets: KpiTargets = KpiTargets()


class Monitoring(Section):
    """`keepwell monitor`: drift since the champions' training window
    (reporting/monitoring/drift.py)."""

    bins: int = Field(default=10, ge=2, le=100)
    psi_warn: float = Field(default=0.10, gt=0)
    psi_retrain: float = Field(default=0.25, gt=0)
    score_psi_retrain: float = Field(default=0.10, gt=0)
    min_features_drifted: int = Field(default=1, ge=1)
    top_n: int = Field(default=20, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> Monitoring:
        if self.psi_warn > self.psi_retrain:
            raise ValueError(
                f"need 0 < psi_warn <= psi_retrain, got {self.psi_warn} and {self.psi_retrain}"
            )
        return self


class Effect(Section):
    """The callback effect model, `keepwell train-effect` (training/effect/)."""

    reasons: tuple[str, ...] = ("post_sale", "quarterly")
    lead_days: int = Field(default=7, ge=0)
    snapshots: int = Field(default=18, ge=3)
    valid_snapshots: int = Field(default=2, ge=1)
    test_snapshots: int = Field(default=3, ge=1)
    learner: Literal["x", "t", "logit", "auto"] = "auto"
    tau_features: tuple[str, ...] = ()
    promotion_resamples: int = Field(default=200, ge=10)
    promotion_quantile: float = Field(default=0.1, gt=0, lt=1)
    num_leaves: int = Field(default=7, ge=2)
    max_depth: int = Field(default=3, ge=-1)
    min_child_samples: int = Field(default=100, ge=1)
    learning_rate: float = Field(default=0.05, gt=0)
    lambda_l2: float = Field(default=10.0, ge=0)
    feature_fraction: float = Field(default=0.8, gt=0, le=1)
    max_trees: int = Field(default=500, ge=1)
    early_stopping_rounds: int = Field(default=30, ge=1)
    top_shares: tuple[float, ...] = (0.1, 0.2, 0.3)
    registered_model: str = "keepwell-callback-effect"


class Simulation(Section):
    """`keepwell simulate` (reporting/simulation/core.py)."""

    months: int = Field(default=6, ge=1)
    calls_per_rm: int = Field(default=40, ge=0)
    seed: int = Field(default=7, ge=0)


class Reasons(Section):
    top_k: int = Field(ge=1, le=10)
    never_as_reason: tuple[str, ...]


class ModelShape(Section):
    """A LightGBM tree shape: explanation cost grows with trees x leaves x depth."""

    num_leaves: int = Field(ge=2, le=1024)
    max_depth: int = Field(ge=-1, le=64)  # -1: no limit
    min_child_samples: int = Field(ge=1)


class SplitConfig(Section):
    snapshots: int = Field(ge=3, le=120)  # monthly labelled snapshots, the newest the last labelled
    valid_snapshots: int = Field(ge=1)
    test_snapshots: int = Field(ge=1)


class ExplainBudget(Section):
    customers: int = Field(ge=1)
    seconds: float = Field(gt=0)
    cores: int = Field(ge=1)
    auc_tolerance: float = Field(ge=0, lt=1)  # against the best unconstrained shape (validation)


class PromotionConfig(Section):
    roc_auc_tolerance: float = Field(ge=0, lt=1)
    calibration_tolerance: float = Field(ge=0, lt=1)  # expected calibration error may rise by


class TrainingConfig(Section):
    targets: tuple[Literal["churn", "complaint"], ...]
    seed: int = Field(ge=0)
    split: SplitConfig
    lightgbm: dict[str, float | int | str | bool]
    max_trees: int = Field(ge=10)
    early_stopping_rounds: int = Field(ge=1)
    imbalance: Literal["none", "balanced"]
    calibration: Literal["isotonic", "platt"]
    isotonic_min_rows: int = Field(default=0, ge=0)  # fewer calibration rows: Platt instead
    shapes: tuple[ModelShape, ...]
    explain_budget: ExplainBudget
    tuning_trials: int = Field(ge=0)  # 0: no hyper-parameter search
    threads: int = Field(default=2, ge=1)  # LightGBM training threads
    promotion: PromotionConfig
    registered_models: dict[str, str]  # target -> registered model name

    @model_validator(mode="after")
    def _names(self) -> TrainingConfig:
        missing = [t for t in self.targets if t not in self.registered_models]
        if missing:
            raise ValueError(f"registered_models lacks a name for target(s) {missing}")
        if not self.shapes:
            raise ValueError("shapes must list at least one model shape")
        return self
