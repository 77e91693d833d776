"""The words a model carries for its features: a sentence per feature without the feature code.

`ReasonTexts` is the JSON-serialisable twin of a `features.spec.FeatureSpec`'s words: built at
training time, written into the MLflow model and read back when serving, so serving needs no
feature code to speak. `FeatureWords` and `SentenceSource` are what `training.reasons` needs from
either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

from keepwell.words import Sentences

if TYPE_CHECKING:
    from features.spec import FeatureSpec


class FeatureWords(Protocol):
    """What a sentence needs from one feature (`features.spec.FeatureDef` and `ReasonText`)."""

    name: str
    dtype: str
    describe: str
    compare_to: str | None

    def sentence(self, value: Any, other: Any = None) -> str: ...


class SentenceSource(Protocol):
    """A `FeatureSpec` or `ReasonTexts`: membership says which features may be described."""

    def describe(self, name: str, value: Any, row: Mapping[str, Any] | None = None) -> str: ...

    def __contains__(self, name: object) -> bool: ...

    def __getitem__(self, name: str) -> FeatureWords: ...


# -- words without feature code ---------------------------------------------------------------
@dataclass(frozen=True)
class ReasonText(Sentences):
    """One feature's words, taken from a `FeatureDef.record()`; `sentence` follows exactly the
    rule of `FeatureDef.sentence` (a test holds the two together)."""

    name: str
    dtype: str
    describe: str
    compare_to: str | None = None
    compare_text: str | None = None
    describe_missing: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ReasonText:
        try:
            return cls(
                name=str(record["name"]),
                dtype=str(record["dtype"]),
                describe=str(record["describe"]),
                compare_to=record.get("compare_to"),
                compare_text=record.get("compare_text"),
                describe_missing=record.get("describe_missing"),
            )
        except KeyError as exc:
            raise KeyError(
                f"feature record {record.get('name', '?')!r} lacks field {exc.args[0]!r}"
            ) from None

    def record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ReasonTexts:
    """The sentence templates of a feature spec plus the reason policy, as plain data.

    Built from a `FeatureSpec` at training time, written as JSON into the MLflow model and read
    back at serving time; it satisfies `SentenceSource`, so `explain` takes it like a spec.
    """

    texts: tuple[ReasonText, ...]
    never_as_reason: tuple[str, ...] = ()
    top_k: int = 3
    spec_version: str = ""
    _by_name: dict[str, ReasonText] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "never_as_reason", tuple(self.never_as_reason))
        by_name = {t.name: t for t in self.texts}
        if len(by_name) != len(self.texts):
            names = [t.name for t in self.texts]
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"reason texts repeat feature name(s) {dupes}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        object.__setattr__(self, "_by_name", by_name)

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        never_as_reason: Iterable[str] = (),
        top_k: int = 3,
        spec_version: str = "",
    ) -> ReasonTexts:
        return cls(
            tuple(ReasonText.from_record(r) for r in records),
            tuple(never_as_reason),
            int(top_k),
            spec_version,
        )

    @classmethod
    def from_spec(
        cls, spec: FeatureSpec, *, never_as_reason: Iterable[str] = (), top_k: int = 3
    ) -> ReasonTexts:
        return cls.from_records(
            spec.records(), never_as_reason=never_as_reason, top_k=top_k, spec_version=spec.version
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec_version": self.spec_version,
            "never_as_reason": list(self.never_as_reason),
            "top_k": self.top_k,
            "features": [t.record() for t in self.texts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReasonTexts:
        """Read `to_dict()` output, or any dict whose `features` are full `spec.records()`."""
        if "features" not in data:
            raise KeyError(f"reason texts need a 'features' list; got keys {sorted(data)}")
        return cls.from_records(
            data["features"],
            never_as_reason=data.get("never_as_reason", ()),
            top_k=int(data.get("top_k", 3)),
            spec_version=str(data.get("spec_version", "")),
        )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.texts)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> ReasonText:
        try:
            return self._by_name[name]
        except KeyError:
            known = len(self.texts)
            raise KeyError(f"no reason text for feature {name!r} ({known} known)") from None

    def __len__(self) -> int:
        return len(self.texts)

    def describe(self, name: str, value: Any, row: Mapping[str, Any] | None = None) -> str:
        text = self[name]
        other = (
            row.get(text.compare_to) if text.compare_to is not None and row is not None else None
        )
        return text.sentence(value, other)
