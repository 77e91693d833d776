"""Keepwell's shared vocabulary: the names every layer uses for targets, tiers, channels and
callback rules, the identifier format, and the one rule that turns a feature's value into an
RM's sentence.

The sentence rule is shared by the feature catalogue (`features.spec.FeatureDef.sentence`) and the
reason texts a
logged model carries (`training.reasons.ReasonText`), which must not import `features`, so that
a model loads where only its bundled code is.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

# The two things Keepwell predicts, one model each.
TARGETS = ("churn", "complaint")
Target = Literal["churn", "complaint"]
RiskTier = Literal["high", "medium", "low"]
ValueTier = Literal["vip", "priority", "standard"]
# How a task reaches the customer (DESIGN.md section 1: the segment decides the channel).
Channel = Literal["rm_call", "call_centre", "e_questionnaire", "visit", "none"]
# The callback rule that makes a callback due (the source documents' mandatory callbacks).
CallbackRule = Literal["post_sale", "quarterly", "complaint_response", "complaint_resolution"]
# Names that were renamed, and what they are now: still accepted, with a FutureWarning.
RENAMED = {"uplift": "effect"}  # the callback effect model's ranking and policy (issue 15)
# Customer, RM and key identifiers: what the API, the lists and the records accept.
ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
ID_MAX_LENGTH = 64


def current_name(value: str, what: str) -> str:
    """`value`, or its new name when it is an old one (`RENAMED`), with a FutureWarning that
    names `what` (e.g. "--rank-by") so that old scripts keep working and say what to change."""
    new = RENAMED.get(value)
    if new is None:
        return value
    warnings.warn(f"{what} {value!r} is deprecated; use {new!r}", FutureWarning, stacklevel=3)
    return new


def renamed(what: str) -> Any:
    """A pydantic validator (for `Annotated[...]`) that reads an old name as its new one."""
    from pydantic import BeforeValidator

    return BeforeValidator(lambda v: current_name(v, what) if isinstance(v, str) else v)


def is_missing(value: Any) -> bool:
    """None or a float NaN (what a null feature value arrives as)."""
    if value is None:
        return True
    try:
        return bool(isinstance(value, float) and math.isnan(value))
    except TypeError:
        return False


def feature_sentence(
    name: str,
    describe: str,
    value: Any,
    *,
    compare_text: str | None = None,
    other: Any = None,
    describe_missing: str | None = None,
) -> str:
    """`describe` formatted with the value, then `compare_text` with the compared feature's
    value when both are there; `describe_missing` (or "<name>: not known") for a null value."""
    if is_missing(value):
        return describe_missing or f"{name.replace('_', ' ')}: not known"
    text = describe.format(value=value)
    if compare_text is not None and not is_missing(other):
        text += ", " + compare_text.format(other=other)
    return text


class Sentences:
    """`sentence(value, other)` for a class with the fields `name`, `describe`, `compare_text`
    and `describe_missing` (`features.spec.FeatureDef`, `training.reason_texts.ReasonText`)."""

    def sentence(self, value: Any, other: Any = None) -> str:
        """The RM sentence for `value` (and the `compare_to` feature's value, when given)."""
        return feature_sentence(
            self.name, self.describe, value, compare_text=self.compare_text, other=other,
            describe_missing=self.describe_missing,
        )  # fmt: skip
