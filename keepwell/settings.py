"""Reading one section of the configuration into a job's settings object.

The settings of `keepwell monitor`, `simulate` and `train-effect` are the pydantic sections of
`keepwell.config` themselves; these two helpers let each job accept a section as a pydantic
model or a mapping and report bad values with its own error type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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
