"""Typed configuration: one YAML file of defaults, loaded once at the edge into frozen objects.

`load_config(user_file)` reads `conf/keepwell.yaml`, merges the user's file over it key by key and
validates the result. An unknown key or a wrong type is a `ConfigError` naming the key.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from keepwell.words import Channel, RiskTier, ValueTier, renamed

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "conf" / "keepwell.yaml"

Segment = Literal["retail", "hnw", "institutional"]
SEGMENTS: tuple[Segment, ...] = ("retail", "hnw", "institutional")


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(_Frozen):
    demo_data: str
    feature_store: str
    features: str
    keys: str
    audit_log: str
    lists: str
    reports: str
    outcomes: str = "tasks/outcomes.sqlite"


class MlflowConfig(_Frozen):
    tracking_uri: str | None = None
    artifact_root: str
    experiment: str


class ChurnLabel(_Frozen):
    closure: bool
    aum_drop_fraction: float = Field(gt=0, le=1)


class ComplaintLabel(_Frozen):
    min_complaints: int = Field(ge=1)


class Labels(_Frozen):
    horizon_days: int = Field(gt=0, le=730)
    churn: ChurnLabel
    complaint: ComplaintLabel


class FeaturesConfig(_Frozen):
    windows_days: tuple[int, ...]
    snapshot_months: int = Field(ge=1, le=120)
    engine: Literal["duckdb", "spark"]


class Policy(_Frozen):
    first_callback_days: int = Field(ge=1)
    quarterly_interval_days: int = Field(ge=1)
    complaint_first_response_hours: int = Field(ge=1)
    complaint_resolution_working_days: int = Field(ge=1)
    complaint_feedback_hours: int = Field(ge=1)
    holdout_share: float = Field(ge=0, lt=1)
    elderly_age: int = Field(ge=18, le=120)
    working_days: tuple[int, ...]
    holidays: tuple[dt.date, ...] = ()
    # complaint resolution due at the opening time of day N working days later, or at the end of
    # that working day (the convention of the resolution-breach feature)
    resolution_due: Literal["same_time", "end_of_day"] = "same_time"
    post_sale_lapse_days: int | None = Field(default=91, ge=1)  # None: never lapses
    callback_notice_days: int = Field(default=7, ge=0)

    @model_validator(mode="after")
    def _weekdays(self) -> Policy:
        bad = [d for d in self.working_days if not 0 <= d <= 6]
        if bad or not self.working_days:
            raise ValueError(f"working_days must be weekday numbers 0-6 (Monday = 0), got {bad}")
        return self


class ValueCuts(_Frozen):
    vip: float = Field(gt=0, lt=1)
    priority: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> ValueCuts:
        if not self.priority < self.vip:
            raise ValueError(f"priority ({self.priority}) must be below vip ({self.vip})")
        return self


class RiskCut(_Frozen):
    churn: float = Field(gt=0, lt=1)
    complaint: float = Field(gt=0, lt=1)


class RiskCuts(_Frozen):
    high: RiskCut
    medium: RiskCut


class ValueInput(_Frozen):
    """One input of the value score: weight x f(x), f chosen by `transform`
    (serving/decisions/tiers.py)."""

    weight: float
    transform: Literal["log1p", "linear", "ordinal"]
    cap: float | None = None  # linear: x clipped to [floor, cap], divided by cap
    floor: float = 0.0
    levels: tuple[str, ...] = ()  # ordinal: lowest first

    @model_validator(mode="after")
    def _shape(self) -> ValueInput:
        if self.transform == "linear" and not (self.cap and self.cap > max(self.floor, 0)):
            raise ValueError(
                f"a linear input needs cap > 0 and cap > floor, got cap {self.cap}, "
                f"floor {self.floor}"
            )
        if self.transform == "ordinal" and len(set(self.levels)) < 2:
            raise ValueError(f"an ordinal input needs 2 or more distinct levels, got {self.levels}")
        return self


class MatrixCell(_Frozen):
    """What to do for one (value tier, risk tier): the action text and a base priority."""

    action: str = Field(min_length=1)
    priority: int = Field(ge=1)  # 1 is the most urgent
    contact: bool = True  # false: no contact, channel "none"
    within_working_days: int = Field(default=5, ge=0)  # a risk task's deadline: D + this many


class SpecialCare(_Frozen):
    """Elderly or disabled customers are always contacted by a person (DESIGN.md section 1)."""

    human_channel: Literal["rm_call", "call_centre", "visit"]  # replaces e_questionnaire
    disabled_channel: Literal["rm_call", "call_centre", "visit"] | None = None


def _complete(name: str, table: dict, keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in table]
    if missing:
        raise ValueError(f"{name} lacks {missing}; it needs every one of {list(keys)}")


class Tiers(_Frozen):
    value_cut_points: ValueCuts
    risk_cut_points: RiskCuts
    value_weights: dict[str, ValueInput]
    matrix: dict[ValueTier, dict[RiskTier, MatrixCell]]
    segment_channel: dict[Segment, dict[RiskTier, Channel]]
    unknown_segment: Segment = "retail"
    special_care: SpecialCare

    @model_validator(mode="after")
    def _tables(self) -> Tiers:
        if not self.value_weights:
            raise ValueError("value_weights must list at least one input")
        risks: tuple[str, ...] = ("high", "medium", "low")
        _complete("matrix", self.matrix, ("vip", "priority", "standard"))
        for tier, row in self.matrix.items():
            _complete(f"matrix.{tier}", row, risks)
        _complete("segment_channel", self.segment_channel, SEGMENTS)
        for segment, row in self.segment_channel.items():
            _complete(f"segment_channel.{segment}", row, risks)
        return self


class Capacity(_Frozen):
    rm_calls_per_day: dict[Segment, int]
    working_hours_per_day: float = Field(gt=0, le=24)


class Planner(_Frozen):
    """The daily callback planner (serving/planning/planner.py)."""

    rank_by: Annotated[Literal["value_at_risk", "risk", "effect"], renamed("planner.rank_by")] = (
        "value_at_risk"
    )

    complaint_weight: float = Field(default=0.5, ge=0)  # a complaint's cost against a churn's
    risk_holdout_share: float = Field(default=0.10, ge=0, lt=1)
    holdout_salt: str = Field(default="keepwell-risk-holdout", min_length=1)
    carry_over_days: int = Field(default=14, ge=0)  # unfinished risk tasks of this many days back
    contact_cooldown_days: int = Field(default=30, ge=0)  # no new risk task this soon after a call


class KpiTargets(_Frozen):
    callback_completion: float = Field(default=0.95, gt=0, le=1)
    complaint_first_response: float = Field(default=0.95, gt=0, le=1)
    complaint_resolution: float = Field(default=0.95, gt=0, le=1)
    complaint_rate_change: float = Field(default=-0.20, ge=-1, le=1)
    churn_rate_change: float = Field(default=-0.20, ge=-1, le=1)
    satisfaction: float = Field(default=0.90, gt=0, le=1)
    satisfied_from: int = Field(default=4, ge=1, le=5)  # a survey score this high is satisfied


class Kpi(_Frozen):
    targets: KpiTargets = KpiTargets()


class Monitoring(_Frozen):
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


class Effect(_Frozen):
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


class Simulation(_Frozen):
    """`keepwell simulate` (reporting/simulation/core.py)."""

    months: int = Field(default=6, ge=1)
    calls_per_rm: int = Field(default=40, ge=0)
    seed: int = Field(default=7, ge=0)


class Reasons(_Frozen):
    top_k: int = Field(ge=1, le=10)
    never_as_reason: tuple[str, ...]


class ModelShape(_Frozen):
    """A LightGBM tree shape: explanation cost grows with trees x leaves x depth."""

    num_leaves: int = Field(ge=2, le=1024)
    max_depth: int = Field(ge=-1, le=64)  # -1: no limit
    min_child_samples: int = Field(ge=1)


class SplitConfig(_Frozen):
    snapshots: int = Field(ge=3, le=120)  # monthly labelled snapshots, the newest the last labelled
    valid_snapshots: int = Field(ge=1)
    test_snapshots: int = Field(ge=1)


class ExplainBudget(_Frozen):
    customers: int = Field(ge=1)
    seconds: float = Field(gt=0)
    cores: int = Field(ge=1)
    auc_tolerance: float = Field(ge=0, lt=1)  # against the best unconstrained shape (validation)


class PromotionConfig(_Frozen):
    roc_auc_tolerance: float = Field(ge=0, lt=1)
    calibration_tolerance: float = Field(ge=0, lt=1)  # expected calibration error may rise by


class TrainingConfig(_Frozen):
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


class DemoConfig(_Frozen):
    customers: int = Field(ge=10)
    months: int = Field(ge=2, le=120)
    seed: int = Field(ge=0)
    start: dt.date
    chunk_customers: int = Field(ge=100)
    segment_mix: dict[Segment, float]
    customers_per_rm: int = Field(ge=10)
    rms_per_branch: int = Field(ge=1)
    elderly_share: float = Field(ge=0, le=1)
    disabled_share: float = Field(ge=0, le=1)
    effect_heterogeneity: float = Field(ge=0, le=1)
    oracle_draws: int = Field(ge=1, le=1000)

    @model_validator(mode="after")
    def _mix(self) -> DemoConfig:
        total = sum(self.segment_mix.values())
        if abs(total - 1) > 1e-6:
            raise ValueError(f"segment_mix must add up to 1, adds up to {total:g}")
        if self.start.day != 1:
            raise ValueError(f"start must be the first day of a month, got {self.start}")
        return self


class Config(_Frozen):
    paths: Paths
    mlflow: MlflowConfig
    labels: Labels
    features: FeaturesConfig
    policy: Policy
    tiers: Tiers
    capacity: Capacity
    planner: Planner = Planner()
    kpi: Kpi = Kpi()
    monitoring: Monitoring = Monitoring()
    effect: Effect = Effect()
    simulation: Simulation = Simulation()
    reasons: Reasons
    training: TrainingConfig
    demo: DemoConfig


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections, got {type(data).__name__}"
        )
    return data


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: {len(exc.errors())} problem(s) in the configuration"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        else:
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def load_config(
    user_file: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> Config:
    """Defaults, then the user's file, then explicit overrides (used by tests and the CLI)."""
    data = _read_yaml(DEFAULT_CONFIG)
    source = str(DEFAULT_CONFIG)
    if user_file is not None:
        data = _merge(data, _read_yaml(Path(user_file)))
        source = str(user_file)
    if overrides:
        data = _merge(data, overrides)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
