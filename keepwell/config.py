"""Typed configuration: one YAML file of defaults, loaded once at the edge into frozen objects.

`load_config(user_file)` reads `conf/keepwell.yaml`, merges the user's file over it key by key and
validates the result. An unknown key or a wrong type is a `ConfigError` naming the key.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from keepwell.sections import SEGMENTS, Section, Segment
from keepwell.sections.decisions import (
    Capacity,
    MatrixCell,
    Planner,
    RiskCut,
    RiskCuts,
    SpecialCare,
    Tiers,
    ValueCuts,
    ValueInput,
)
from keepwell.sections.models import (
    Effect,
    ExplainBudget,
    Kpi,
    KpiTargets,
    ModelShape,
    Monitoring,
    PromotionConfig,
    Reasons,
    Simulation,
    SplitConfig,
    TrainingConfig,
)

# the whole configuration is importable from here, its sections included
__all__ = [
    "DEFAULT_CONFIG",
    "SEGMENTS",
    "Capacity",
    "Config",
    "ConfigError",
    "DemoConfig",
    "Effect",
    "ExplainBudget",
    "FeaturesConfig",
    "Kpi",
    "KpiTargets",
    "Labels",
    "MatrixCell",
    "MlflowConfig",
    "ModelShape",
    "Monitoring",
    "Paths",
    "Planner",
    "Policy",
    "PromotionConfig",
    "Reasons",
    "RiskCut",
    "RiskCuts",
    "Section",
    "Segment",
    "Simulation",
    "SpecialCare",
    "SplitConfig",
    "Tiers",
    "TrainingConfig",
    "ValueCuts",
    "ValueInput",
    "load_config",
]

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "conf" / "keepwell.yaml"


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


class Paths(Section):
    demo_data: str
    feature_store: str
    features: str
    keys: str
    audit_log: str
    lists: str
    reports: str
    outcomes: str = "tasks/outcomes.sqlite"


class MlflowConfig(Section):
    tracking_uri: str | None = None
    artifact_root: str
    experiment: str


class ChurnLabel(Section):
    closure: bool
    aum_drop_fraction: float = Field(gt=0, le=1)


class ComplaintLabel(Section):
    min_complaints: int = Field(ge=1)


class Labels(Section):
    horizon_days: int = Field(gt=0, le=730)
    churn: ChurnLabel
    complaint: ComplaintLabel


class FeaturesConfig(Section):
    windows_days: tuple[int, ...]
    snapshot_months: int = Field(ge=1, le=120)
    engine: Literal["duckdb", "spark"]


class Policy(Section):
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


class DemoConfig(Section):
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


class Config(Section):
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
