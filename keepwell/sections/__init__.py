"""The configuration's sections: one frozen model per block of `conf/keepwell.yaml`.

`Section` is their base (unknown keys are errors, values cannot change); `keepwell.config`
assembles them into `Config`. This package holds the base and the segments; the decision
sections (`decisions`) and the model and report sections (`models`) have their modules.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Segment = Literal["retail", "hnw", "institutional"]
SEGMENTS: tuple[Segment, ...] = ("retail", "hnw", "institutional")


class Section(BaseModel):
    """A block of the configuration: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
