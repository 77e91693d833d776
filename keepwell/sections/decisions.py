"""How scores become decisions: value and risk tiers, channels, capacity, the planner."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from keepwell.sections import SEGMENTS, Section, Segment
from keepwell.words import Channel, RiskTier, ValueTier, renamed


class ValueCuts(Section):
    vip: float = Field(gt=0, lt=1)
    priority: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> ValueCuts:
        if not self.priority < self.vip:
            raise ValueError(f"priority ({self.priority}) must be below vip ({self.vip})")
        return self


class RiskCut(Section):
    churn: float = Field(gt=0, lt=1)
    complaint: float = Field(gt=0, lt=1)


class RiskCuts(Section):
    high: RiskCut
    medium: RiskCut


class ValueInput(Section):
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


class MatrixCell(Section):
    """What to do for one (value tier, risk tier): the action text and a base priority."""

    action: str = Field(min_length=1)
    priority: int = Field(ge=1)  # 1 is the most urgent
    contact: bool = True  # false: no contact, channel "none"
    within_working_days: int = Field(default=5, ge=0)  # a risk task's deadline: D + this many


class SpecialCare(Section):
    """Elderly or disabled customers are always contacted by a person (DESIGN.md section 1)."""

    human_channel: Literal["rm_call", "call_centre", "visit"]  # replaces e_questionnaire
    disabled_channel: Literal["rm_call", "call_centre", "visit"] | None = None


def _complete(name: str, table: dict, keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in table]
    if missing:
        raise ValueError(f"{name} lacks {missing}; it needs every one of {list(keys)}")


class Tiers(Section):
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


class Capacity(Section):
    rm_calls_per_day: dict[Segment, int]
    working_hours_per_day: float = Field(gt=0, le=24)


class Planner(Section):
    """The daily callback planner (serving/planning/planner.py)."""

    rank_by: Annotated[Literal["value_at_risk", "risk", "effect"], renamed("planner.rank_by")] = (
        "value_at_risk"
    )

    complaint_weight: float = Field(default=0.5, ge=0)  # a complaint's cost against a churn's
    risk_holdout_share: float = Field(default=0.10, ge=0, lt=1)
    holdout_salt: str = Field(default="keepwell-risk-holdout", min_length=1)
    carry_over_days: int = Field(default=14, ge=0)  # unfinished risk tasks of this many days back
    contact_cooldown_days: int = Field(default=30, ge=0)  # no new risk task this soon after a call
