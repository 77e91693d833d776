"""Column types of the contract, as pandera Ibis data types that accept a family of physical types.

A bank's export decides the physical width (int32 or int64, float32 or float64, timestamps in
seconds or nanoseconds); the contract only cares about the family. Each type here is a real
`pandera.engines.ibis_engine.DataType`, so `Model.validate(table)` in pandera accepts the same
widths as `keepwell validate`. `target` is the type a CSV column is parsed into.
"""

from __future__ import annotations

from typing import ClassVar

import ibis.expr.datatypes as dt
from pandera import dtypes
from pandera.dtypes import immutable
from pandera.engines import ibis_engine

UTC_NAMES = frozenset({"UTC", "Etc/UTC", "utc", "Z", "+00:00", "GMT", "Etc/GMT"})


@immutable
class ContractType(ibis_engine.DataType):
    """A family of Ibis types; `accepts` says whether a physical column type belongs to it."""

    type = dt.string
    label: ClassVar[str] = "?"

    def accepts(self, actual: dt.DataType) -> bool:
        raise NotImplementedError

    def check(self, pandera_dtype: dtypes.DataType, data_container: object = None) -> bool:
        try:
            actual = ibis_engine.Engine.dtype(pandera_dtype).type
        except (TypeError, ValueError):
            return False
        return self.accepts(actual)

    def __str__(self) -> str:
        return self.label


@immutable
class String(ContractType):
    type = dt.string
    label = "string"

    def accepts(self, actual: dt.DataType) -> bool:
        return actual.is_string()


@immutable
class Boolean(ContractType):
    type = dt.boolean
    label = "boolean"

    def accepts(self, actual: dt.DataType) -> bool:
        return actual.is_boolean()


@immutable
class Integer(ContractType):
    """Any signed or unsigned integer width."""

    type = dt.int64
    label = "integer"

    def accepts(self, actual: dt.DataType) -> bool:
        return actual.is_integer()


@immutable
class Float(ContractType):
    """Any floating-point width (integers and decimals are not floats)."""

    type = dt.float64
    label = "float"

    def accepts(self, actual: dt.DataType) -> bool:
        return actual.is_floating()


@immutable
class Date(ContractType):
    type = dt.date
    label = "date"

    def accepts(self, actual: dt.DataType) -> bool:
        return actual.is_date()


@immutable
class Timestamp(ContractType):
    """A timestamp of any unit, time zone UTC or none (a naive timestamp means UTC)."""

    type = dt.Timestamp(timezone="UTC")
    label = "timestamp (UTC)"

    def accepts(self, actual: dt.DataType) -> bool:
        return actual.is_timestamp() and (actual.timezone is None or actual.timezone in UTC_NAMES)
