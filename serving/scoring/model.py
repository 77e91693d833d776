"""What a served champion is, and the error that stops start-up when a piece is missing.

Shared by the loader (`serving.scoring.loading`) and the scorer (`serving.scoring.scorer`), so
that the scorer imports the loader and not the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.fitted import FittedModel
    from training.reasons import ReasonTexts

# The customer columns a decision needs besides the tiers (the tier matrix and the channel).
DECISION_FEATURES = ("segment", "is_elderly", "is_disabled")


class ServingSetupError(RuntimeError):
    """Something the service needs is missing; the message names it and the command to run."""


@dataclass(frozen=True)
class ServedModel:
    """One champion: registered name and version, the fitted model and its reason texts."""

    target: str
    name: str
    version: str
    fitted: FittedModel
    texts: ReasonTexts
