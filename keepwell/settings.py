"""Reading one section of the configuration into a job's settings object.

The settings of `keepwell monitor`, `simulate` and `train-effect` are the pydantic sections of
`keepwell.config` themselves; these two helpers let each job accept a section as a pydantic
model or a mapping and report bad values with its own error type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import ValidationError


def section_values(section: Any, names: Iterable[str] | None = None) -> dict[str, Any]:
    """A config section (a pydantic model, a mapping or None) as a dict, only `names` if given."""
    if section is None:
        return {}
    values = section.model_dump() if hasattr(section, "model_dump") else dict(section)
    return values if names is None else {k: v for k, v in values.items() if k in set(names)}


def init_checked(init: Any, values: Mapping[str, Any], error: type[Exception], what: str) -> None:
    """Call a section model's `__init__` with `values`; a validation error becomes `error`
    ("<what>: <field>: <message>; ..."), so a job reports bad settings in its own terms."""
    try:
        init(**values)
    except ValidationError as exc:
        problems = [
            (".".join(str(p) for p in e["loc"]) + ": " if e["loc"] else "") + e["msg"]
            for e in exc.errors()
        ]
        raise error(f"{what}: " + "; ".join(problems)) from None


class CheckedSection:
    """Put first in the bases of a job's settings class that is a config section model itself
    (`class MonitoringSettings(CheckedSection, Monitoring, error=MonitoringError, what=...)`):
    bad values raise the job's own `error`, and `from_section` reads a section given as a
    pydantic model, a mapping or None (the defaults)."""

    error: ClassVar[type[Exception]] = ValueError
    what: ClassVar[str] = "settings"

    def __init_subclass__(
        cls, error: type[Exception] | None = None, what: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if error is not None:
            cls.error = error
        if what is not None:
            cls.what = what

    def __init__(self, **values: Any) -> None:
        init_checked(super().__init__, values, self.error, self.what)

    @classmethod
    def from_section(cls, section: Any, *, known_only: bool = False, **overrides: Any) -> Any:
        """The settings of `section`, then the non-None `overrides`; with `known_only`, keys the
        model does not declare are ignored (else they are an error)."""
        names = getattr(cls, "model_fields", None) if known_only else None
        values = section_values(section, names)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
