"""Value tiers, risk tiers and the tier matrix: pure, config-driven decisions (no I/O).

DESIGN.md section 1: customers are tiered VIP / Priority / Standard by a value score built from
current value (assets, revenue, transaction amount and frequency) and potential value (loyalty,
growth, product depth, credit); risk tiers High / Medium / Low come from the calibrated churn and
complaint probabilities; the tier matrix (`tiers.matrix`) turns a (value tier, risk tier) pair into
an action and a base priority, and the segment strategy (`tiers.segment_channel`) decides the
channel. Elderly and disabled customers ("special care") are always contacted by a person.

Tier labels are the display names "VIP" / "Priority" / "Standard" and "High" / "Medium" / "Low"
(as in the training reports); the API's codes (`serving.scoring.schemas.ValueTier`, `RiskTier`) are
their
lower-case forms, see `tier_code`. Every function here accepts either spelling.

* the value score and value tiers: `serving.decisions.value` (`value_scores`, `ValueTiers`).
* `risk_tiers(p_churn, p_complaint, config)` - High / Medium / Low.
* `decide(value_tier, risk_tier, segment, elderly=, disabled=, config=)` -> `Decision`;
  `decide_frame(frame, config)` - the same for a whole book, vectorised (one table lookup).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from keepwell.words import Channel
from serving.decisions.value import VALUE_TIERS, as_floats, as_strings

if TYPE_CHECKING:
    from keepwell.config import Config

RISK_TIERS: tuple[str, ...] = ("High", "Medium", "Low")
SEGMENTS: tuple[str, ...] = ("retail", "hnw", "institutional")
CHANNELS: tuple[str, ...] = get_args(Channel)
HUMAN_CHANNELS: tuple[str, ...] = ("rm_call", "call_centre", "visit")
# decide_frame's input columns; the boolean ones may also carry the feature names
FRAME_COLUMNS: dict[str, tuple[str, ...]] = {
    "value_tier": ("value_tier",),
    "risk_tier": ("risk_tier",),
    "segment": ("segment",),
    "elderly": ("elderly", "is_elderly"),
    "disabled": ("disabled", "is_disabled"),
}


def tier_code(label: str) -> str:
    """The API code of a tier label: "VIP" -> "vip", "High" -> "high"."""
    return label.lower()


# -- risk tiers --------------------------------------------------------------------------------
def _probabilities(values: Any, name: str) -> np.ndarray:
    p = as_floats(values, name)
    bad = (p < 0) | (p > 1)
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} value(s) outside [0, 1], e.g. {p[bad][:3]}")
    return p


# Risk tier labels by code: `RISK_LABELS[target_tier(...)]` (0 low, 1 medium, 2 high).
RISK_LABELS = np.array(["Low", "Medium", "High"], dtype=object)


def target_tier(p: np.ndarray, target: str, config: Config) -> np.ndarray:
    """0/1/2 (low/medium/high) of one target's probability against its own cut points.

    A customer's risk tier is the higher of the two targets' codes: that is `risk_tiers`, and
    the scorer and the planner take `RISK_LABELS[np.maximum(churn code, complaint code)]` in
    numpy on arrays they already checked (`risk_tiers` validates its input first). A NaN
    probability reaches no cut."""
    cuts = config.tiers.risk_cut_points
    high, medium = getattr(cuts.high, target), getattr(cuts.medium, target)
    return np.where(p >= high, 2, np.where(p >= medium, 1, 0))


def risk_tiers(p_churn: Any, p_complaint: Any, config: Config) -> np.ndarray:
    """Tier "High" when either probability reaches its high cut (`tiers.risk_cut_points.high`),
    "Medium" when either reaches its medium cut, else "Low".

    The complaint probability alone can make a customer High (the second trigger of the
    issue). A null or NaN probability counts as not reaching any cut. Scalars and array-likes
    broadcast; the result is a 1-d object array.
    """
    churn = _probabilities(p_churn, "p_churn")
    complaint = _probabilities(p_complaint, "p_complaint")
    churn, complaint = np.broadcast_arrays(churn, complaint)
    codes = np.maximum(
        target_tier(churn, "churn", config), target_tier(complaint, "complaint", config)
    )
    return RISK_LABELS[codes]


# -- the tier matrix and the segment strategy ---------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """What to do about one customer: action text, channel, base priority (1 first), care flag."""

    action: str
    channel: str
    priority: int
    special_care: bool


@dataclass(frozen=True)
class _Table:
    """Every decision, indexed by value x risk x segment x elderly x disabled (3x3x3x2x2)."""

    actions: np.ndarray  # distinct action texts
    action: np.ndarray  # int index into actions, per cell
    channel: np.ndarray  # int index into CHANNELS, per cell
    priority: np.ndarray  # int64 per cell
    special: np.ndarray  # bool per cell


def _channel(
    config: Config, segment: str, risk: str, contact: bool, elderly: bool, disabled: bool
) -> str:
    """The channel for one cell: the segment's, made human for special care, "none" without a
    contact (special care decides how a person is reached, not whether)."""
    if not contact:
        return "none"
    channel = config.tiers.segment_channel[segment][risk]  # type: ignore[index]
    care = config.tiers.special_care
    if disabled and care.disabled_channel is not None:
        return care.disabled_channel
    if (elderly or disabled) and channel not in HUMAN_CHANNELS:
        return care.human_channel
    return channel


_TABLES: OrderedDict[int, tuple[Any, _Table]] = OrderedDict()
_TABLES_KEPT = 8


def _table(config: Config) -> _Table:
    """The decision table of `config.tiers`, built once per tiers object (a few kept, most
    recent first). The cache holds the tiers object itself, so its id cannot be reused while
    cached; the config is frozen, so the table cannot go stale."""
    tiers = config.tiers
    hit = _TABLES.get(id(tiers))
    if hit is not None and hit[0] is tiers:
        _TABLES.move_to_end(id(tiers))
        return hit[1]
    table = _build_table(config)
    _TABLES[id(tiers)] = (tiers, table)
    while len(_TABLES) > _TABLES_KEPT:
        _TABLES.popitem(last=False)
    return table


def _build_table(config: Config) -> _Table:
    keys = [(v, r, s, e, d) for v in VALUE_TIERS for r in RISK_TIERS for s in SEGMENTS
            for e in (False, True) for d in (False, True)]  # fmt: skip
    cells = [config.tiers.matrix[v.lower()][r.lower()] for v, r, *_ in keys]  # type: ignore[index]
    actions = np.array(sorted({c.action for c in cells}), dtype=object)
    return _Table(
        actions=actions,
        action=np.searchsorted(actions, [c.action for c in cells]),
        channel=np.array(
            [
                CHANNELS.index(_channel(config, s, r.lower(), c.contact, e, d))
                for (_, r, s, e, d), c in zip(keys, cells, strict=True)
            ]
        ),
        priority=np.array([c.priority for c in cells], dtype=np.int64),
        special=np.array([e or d for *_, e, d in keys], dtype=bool),
    )


def _codes(values: Any, labels: Sequence[str], name: str, default: int | None = None):
    """Label indices of `values` (as written, lower or upper case); null is `default` or an
    error; an unknown value is an error naming it."""
    arr = as_strings(values)
    spellings = _SPELLINGS.get(tuple(labels)) or _spellings(labels)
    words, codes = list(spellings), list(spellings.values())
    found = pc.index_in(arr, value_set=pa.array(words, arr.type))
    null = np.asarray(arr.is_null(), dtype=bool)
    position = np.asarray(found.fill_null(-1), dtype=np.int64)
    bad = (position < 0) & ~null
    if bad.any():
        shown = sorted(set(np.asarray(arr, dtype=object)[bad].tolist()))[:5]
        raise ValueError(f"{name}: unknown value(s) {shown}; expected one of {list(labels)}")
    if null.any() and default is None:
        raise ValueError(f"{name}: {int(null.sum())} null value(s); expected one of {list(labels)}")
    return np.where(position < 0, -1 if default is None else default, np.array(codes)[position])


def _spellings(labels: Sequence[str]) -> dict[str, int]:
    """Accepted spellings of each label (as written, lower, upper case) -> its index."""
    return {w: i for i, label in enumerate(labels) for w in (label, label.lower(), label.upper())}


_SPELLINGS = {labels: _spellings(labels) for labels in (VALUE_TIERS, RISK_TIERS, SEGMENTS)}


def _scalar_code(value: Any, labels: tuple[str, ...], name: str, default: int | None = None):
    """`_codes` for one value."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        if default is None:
            raise ValueError(f"{name}: 1 null value(s); expected one of {list(labels)}")
        return default
    code = _SPELLINGS[labels].get(value) if isinstance(value, str) else None
    if code is None:
        raise ValueError(f"{name}: unknown value(s) {[str(value)]}; expected one of {list(labels)}")
    return code


def _flag(value: Any) -> int:
    """One boolean, null as False."""
    return 0 if value is None or pd.isna(value) else int(bool(value))


def _flags(values: Any) -> np.ndarray:
    """Booleans with null as False."""
    return pd.Series(values, copy=False).fillna(False).to_numpy(dtype=bool)


def _lookup(config: Config, value, risk, segment, elderly, disabled) -> tuple[_Table, np.ndarray]:
    table = _table(config)
    v = _codes(value, VALUE_TIERS, "value_tier")
    r = _codes(risk, RISK_TIERS, "risk_tier")
    s = _codes(segment, SEGMENTS, "segment", SEGMENTS.index(config.tiers.unknown_segment))
    cell = (((v * 3 + r) * 3 + s) * 2 + _flags(elderly)) * 2 + _flags(disabled)
    return table, cell


def decide(
    value_tier: str,
    risk_tier: str,
    segment: str | None,
    *,
    elderly: bool | None,
    disabled: bool | None,
    config: Config,
) -> Decision:
    """The action, channel and base priority for one customer (see `decide_frame`); a plain
    dictionary lookup, a few microseconds."""
    table = _table(config)
    v = _scalar_code(value_tier, VALUE_TIERS, "value_tier")
    r = _scalar_code(risk_tier, RISK_TIERS, "risk_tier")
    s = _scalar_code(segment, SEGMENTS, "segment", SEGMENTS.index(config.tiers.unknown_segment))
    i = (((v * 3 + r) * 3 + s) * 2 + _flag(elderly)) * 2 + _flag(disabled)
    return Decision(
        action=str(table.actions[table.action[i]]),
        channel=CHANNELS[int(table.channel[i])],
        priority=int(table.priority[i]),
        special_care=bool(table.special[i]),
    )


def _take(words: Sequence[str], index: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """`words[index]` as a pandas string array, built in Arrow (no Python string per row)."""
    return pa.array(list(words), pa.string()).take(pa.array(index)).to_pandas().array


def _column(frame: pd.DataFrame, field: str) -> pd.Series:
    for name in FRAME_COLUMNS[field]:
        if name in frame.columns:
            return frame[name]
    raise ValueError(f"decide_frame: the frame lacks column {' or '.join(FRAME_COLUMNS[field])}")


def decide_frame(frame: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Decisions for a whole book: columns action, channel, priority, special_care, on the
    frame's index.

    Input columns: value_tier, risk_tier (labels, any case), segment (null: `tiers.
    unknown_segment`), elderly or is_elderly, disabled or is_disabled (null: False).

    * action and priority: `tiers.matrix[value][risk]`;
    * channel: `tiers.segment_channel[segment][risk]`; "none" when the cell has `contact: false`;
    * special care (elderly or disabled): a disabled customer's contact becomes
      `special_care.disabled_channel` when configured, and any channel that is not a person
      (e_questionnaire) becomes `special_care.human_channel`.

    All 108 combinations are tabulated once and looked up by index, so a million rows take a
    fraction of a second and the result equals `decide` row by row.
    """
    table, cell = _lookup(
        config,
        _column(frame, "value_tier"),
        _column(frame, "risk_tier"),
        _column(frame, "segment"),
        _column(frame, "elderly"),
        _column(frame, "disabled"),
    )
    return pd.DataFrame(
        {
            "action": _take(table.actions, table.action[cell]),
            "channel": _take(CHANNELS, table.channel[cell]),
            "priority": table.priority[cell],
            "special_care": table.special[cell],
        },
        index=frame.index,
    )


def contact_channels(frame: pd.DataFrame, config: Config) -> pd.Series:
    """The channel each customer is reached by when a contact is due whatever the tier matrix
    says (a policy callback): the segment's channel at the customer's risk tier
    (`tiers.segment_channel`), made human for special care as in `decide_frame`. Same input
    columns as `decide_frame` except value_tier."""
    keys = [(r, s, e, d) for r in RISK_TIERS for s in SEGMENTS for e in (False, True)
            for d in (False, True)]  # fmt: skip
    table = np.array(
        [CHANNELS.index(_channel(config, s, r.lower(), True, e, d)) for r, s, e, d in keys]
    )
    r = _codes(_column(frame, "risk_tier"), RISK_TIERS, "risk_tier")
    s = _codes(
        _column(frame, "segment"), SEGMENTS, "segment", SEGMENTS.index(config.tiers.unknown_segment)
    )
    cell = ((r * 3 + s) * 2 + _flags(_column(frame, "elderly"))) * 2 + _flags(
        _column(frame, "disabled")
    )
    return pd.Series(_take(CHANNELS, table[cell]), index=frame.index)
