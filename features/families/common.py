"""What every family module needs: the parameters from config and the input column sets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from features.spec import FeatureDef, Measure

if TYPE_CHECKING:
    from keepwell.config import Config

# Bit masks for "distinct ... " features (popcount of an OR over events). The values mirror the
# data contract; anything else maps to 0 and is not counted.
TXN_CHANNELS: tuple[str, ...] = ("branch", "app", "web", "phone")
DIGITAL_CHANNELS: tuple[str, ...] = ("app", "web")
PRODUCT_TYPES: tuple[str, ...] = (
    "deposit",
    "fund",
    "bond",
    "equity",
    "insurance",
    "structured",
    "loan",
)
FEE_WINDOW_DAYS = 365  # "12-month fee revenue": a definition of value, not a config window

Inputs = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class Params:
    """Windows and policy values the definitions are built with (all from `Config`)."""

    windows: tuple[int, ...]
    response_hours: int
    resolution_working_days: int
    working_days: tuple[int, ...]
    holidays: tuple[dt.date, ...]
    elderly_age: int

    def __post_init__(self) -> None:
        if len(self.windows) < 2 or list(self.windows) != sorted(set(self.windows)):
            raise ValueError(
                "features.windows_days needs at least two distinct windows in increasing order "
                f"(short, ..., long), got {list(self.windows)}"
            )

    @property
    def short(self) -> int:
        return self.windows[0]

    @property
    def mid(self) -> int:
        return self.windows[1] if len(self.windows) > 2 else self.windows[-1]

    @property
    def long(self) -> int:
        return self.windows[-1]

    @classmethod
    def from_config(cls, config: Config) -> Params:
        windows = tuple(sorted(set(config.features.windows_days)))
        policy = config.policy
        return cls(
            windows=windows,
            response_hours=policy.complaint_first_response_hours,
            resolution_working_days=policy.complaint_resolution_working_days,
            working_days=tuple(sorted(set(policy.working_days))),
            holidays=tuple(sorted(set(policy.holidays))),
            elderly_age=policy.elderly_age,
        )


def total_of(measure: Any) -> Callable[[Any], Any]:
    """A `compute` returning the measure with null as 0 (counts and sums)."""
    return lambda view: view.total(measure)


def inputs(table: str, *columns: str) -> Inputs:
    return (table, ("customer_id", *columns))


def customer_inputs(*columns: str) -> Inputs:
    return ("customers", ("customer_id", *columns))


@dataclass(frozen=True)
class Family:
    """Builds the definitions of one family: the shapes most features share, written once."""

    name: str

    def define(
        self, name: str, dtype: str, aggregation: str, window_days: int | None, **fields: Any
    ) -> FeatureDef:
        """Any feature of this family (`fields`: the other `FeatureDef` fields; `inputs` may be
        one input set or a tuple of them)."""
        given = fields.pop("inputs")
        fields["inputs"] = (given,) if isinstance(given[0], str) else tuple(given)
        return FeatureDef(
            name=name,
            family=self.name,
            dtype=dtype,
            aggregation=aggregation,
            window_days=window_days,
            **fields,
        )

    def total(
        self,
        name: str,
        measure: Measure,
        inputs: Any,
        describe: str,
        formula: str,
        dtype: str = "int64",
        aggregation: str = "count",
        **fields: Any,
    ) -> FeatureDef:
        """One measure's total, null as 0 (a count or a sum), over the measure's window."""
        return self.define(
            name,
            dtype,
            aggregation,
            measure.window_days,
            inputs=inputs,
            describe=describe,
            formula=formula,
            measures=(measure,),
            compute=total_of(measure),
            **fields,
        )

    def days_since(
        self, name: str, measure: Measure, inputs: Any, last: str, newest: str, missing: str
    ) -> FeatureDef:
        """Calendar days from the newest event (`measure`: a max of a timestamp) to as_of: "last
        <last> N days ago"; the formula names the `newest` event."""
        return self.define(
            name,
            "int64",
            "days_since",
            None,
            inputs=inputs,
            describe=f"last {last} {{value:.0f}} days ago",
            formula=f"as_of minus the UTC date of the newest {newest} before as_of, in days",
            measures=(measure,),
            compute=lambda v: v.days_since(measure),
            describe_missing=missing,
        )

    def window_counts(
        self,
        stem: str,
        measure_of: Callable[[int], Measure],
        inputs: Any,
        what: str,
        formula: str,
        windows: Iterable[int],
        compare: Callable[[int], dict[str, str]] | None = None,
    ) -> list[FeatureDef]:
        """`<stem>_<w>d` for each window w: "N <what> in the last w days", the count of
        `measure_of(w)`; `{w}` in `formula` is the window, `compare(w)` its comparison fields."""
        return [
            self.total(
                f"{stem}_{w}d",
                measure_of(w),
                inputs,
                f"{{value:.0f}} {what} in the last {w} days",
                formula.format(w=w),
                **(compare(w) if compare else {}),
            )
            for w in windows
        ]


def compared_to(other: str, text: str) -> dict[str, str]:
    """The `compare_to`/`compare_text` fields: set this feature against `other` in a sentence."""
    return {"compare_to": other, "compare_text": text}
