"""Point-in-time properties, checked with hypothesis on the five-customer bank.

as_of is drawn from any day (not only month starts), and the edited events fall at any second.
What "not yet known" means is the contract's rule (`keepwell.contract.timing`): an event at or
after as_of, a monthly closing balance whose month has not ended before as_of.

* Changing, adding or deleting anything not yet known at as_of never changes that snapshot's
  features (every column: timestamps, amounts, categories, later responses and closings).
* Labels read only what becomes known in [as_of, as_of + H): anything not yet known at
  as_of + H - and tables the labels do not read - never changes them, while an event inside
  the horizon can.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import build_features
from features.definitions import default_spec
from features.labels import build_labels
from keepwell.contract import timing
from tests.features.fixtures import FIRST_EVENT, LAST_EVENT, T, bank_frames, connect, load

AS_OF_CHOICES = (dt.date(2024, 6, 1), T)
# any day of the fixture's busy months; labels need the whole horizon inside the data
ANY_DAY = st.one_of(
    st.sampled_from(AS_OF_CHOICES), st.dates(dt.date(2023, 11, 1), LAST_EVENT + dt.timedelta(1))
)
LABELED_DAY = st.one_of(
    st.sampled_from(AS_OF_CHOICES), st.dates(dt.date(2023, 11, 1), dt.date(2024, 7, 1))
)
CUSTOMERS = ("C1", "C2", "C3", "C4", "C5", "C9")
SECONDS_AHEAD = 400 * 86_400
RANGE = (FIRST_EVENT, LAST_EVENT)


@pytest.fixture(scope="module")
def con():
    return connect()


@pytest.fixture(scope="module")
def spec(config):
    return default_spec(config)


def _key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["as_of", "customer_id"]).reset_index(drop=True)


def _features(con, frames, as_of, spec, config) -> pd.DataFrame:
    built = build_features(load(con, frames), [as_of], spec, config, data_range=RANGE)
    return _key(built.to_pandas())


def _labels(con, frames, as_of, config) -> pd.DataFrame:
    # the data's end is fixed here: whether a snapshot is labeled is tested in test_golden
    return _key(build_labels(load(con, frames), [as_of], config, data_range=RANGE).to_pandas())


class Mutator:
    """Random edits of everything at or after `cutoff` (hypothesis draws every choice)."""

    def __init__(self, data: st.DataObject, cutoff: pd.Timestamp) -> None:
        self.data = data
        self.cutoff = cutoff

    def draw(self, strategy):
        return self.data.draw(strategy)

    def later(self) -> pd.Timestamp:
        """A random instant at or after the cutoff (the cutoff itself included)."""
        return self.cutoff + pd.Timedelta(seconds=self.draw(st.integers(0, SECONDS_AHEAD)))

    def edit_rows(self, df: pd.DataFrame, whole_row_after: pd.Series, edits: dict) -> pd.DataFrame:
        """Delete, keep or edit the rows that lie wholly after the cutoff."""
        keep = []
        df = df.copy()
        for i in df.index:
            if not whole_row_after.loc[i]:
                keep.append(i)
                continue
            action = self.draw(st.sampled_from(["keep", "delete", "edit"]))
            if action == "delete":
                continue
            if action == "edit":
                for col, make in edits.items():
                    df.at[i, col] = make()
            keep.append(i)
        return df.loc[keep]

    def edit_later_columns(self, df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        """Move or erase timestamps that are at or after the cutoff (in rows that began before)."""
        df = df.copy()
        for col in columns:
            for i in df.index[df[col].notna() & (df[col] >= self.cutoff)]:
                if self.draw(st.booleans()):
                    df.at[i, col] = self.draw(st.sampled_from([None, "later"])) and self.later()
        return df

    def add(self, df: pd.DataFrame, make_row) -> pd.DataFrame:
        n = self.draw(st.integers(0, 3))
        new = [make_row(j) for j in range(n)]
        if not new:
            return df
        extra = pd.DataFrame(new, columns=df.columns).astype(df.dtypes.to_dict())
        return pd.concat([df, extra], ignore_index=True)

    def customer(self) -> str:
        return self.draw(st.sampled_from(CUSTOMERS))


def mutate_after(frames: dict[str, pd.DataFrame], m: Mutator) -> dict[str, pd.DataFrame]:
    """Every table edited at or after m.cutoff only."""
    cut = m.cutoff
    out = dict(frames)
    amount = lambda: float(m.draw(st.integers(1, 10_000)))  # noqa: E731

    tx = out["transactions"]
    tx = m.edit_rows(
        tx,
        tx.ts >= cut,
        {
            "ts": m.later,
            "amount": amount,
            "direction": lambda: m.draw(st.sampled_from(["in", "out"])),
            "channel": lambda: m.draw(st.sampled_from(["branch", "app", "web", "phone"])),
            "fee": lambda: m.draw(st.sampled_from([None, 0.5, 7.0])),
        },
    )
    out["transactions"] = m.add(
        tx,
        lambda j: [m.customer(), m.later(), amount(), "in", "app", 1.0],
    )
    se = out["sessions"]
    se = m.edit_rows(se, se.ts >= cut, {"ts": m.later})
    out["sessions"] = m.add(se, lambda j: [m.customer(), m.later(), "web"])

    ba = out["balances"]
    # a month's closing balance is known once the month is over (the contract's rule)
    first_unknown = timing.cutoff("balances", "month", cut.date())
    unknown = ba.month.map(lambda d: d >= first_unknown)
    ba = m.edit_rows(ba, unknown, {"aum": amount})
    out["balances"] = m.add(
        ba,
        lambda j: [m.customer(), _months_after(first_unknown, m.draw(st.integers(0, 10))),
                   amount()],
    )  # fmt: skip

    ho = out["holdings"]
    ho = m.edit_rows(
        ho,
        ho.opened_at >= cut,
        {"opened_at": m.later, "product_risk": lambda: m.draw(st.integers(1, 5))},
    )
    ho = m.edit_later_columns(ho, ["closed_at"])
    ho = ho[~(ho.closed_at.notna() & (ho.closed_at < ho.opened_at))]
    out["holdings"] = m.add(
        ho,
        lambda j: [m.customer(), f"HN{j}", "equity", 5, m.later(), None, 1.0],
    )

    co = out["complaints"]
    co = m.edit_rows(
        co,
        co.opened_at >= cut,
        {"opened_at": m.later, "severity": lambda: m.draw(st.sampled_from(["low", "high"]))},
    )
    co = m.edit_later_columns(co, ["first_response_at", "resolved_at"])
    out["complaints"] = m.add(
        co,
        lambda j: [f"KN{j}", m.customer(), m.later(), None, None, "fees", "high"],
    )

    cb = out["callbacks"]
    whole_after = (cb.due_at >= cut) & (cb.done_at.isna() | (cb.done_at >= cut))
    cb = m.edit_rows(
        cb,
        whole_after,
        {
            "due_at": m.later,
            "outcome": lambda: m.draw(st.sampled_from(["holdout", "declined", None])),
            "reason": lambda: m.draw(st.sampled_from(["post_sale", "quarterly"])),
        },
    )
    cb = m.edit_later_columns(cb, ["done_at"])
    out["callbacks"] = m.add(
        cb,
        lambda j: [f"CBN{j}", m.customer(), "post_sale", m.later(), m.later(), "reached", 1],
    )

    cu = m.edit_later_columns(out["customers"], ["closed_at"])
    newcomer = {
        "customer_id": "C7", "segment": "hnw", "kind": "individual",
        "birth_date": dt.date(1940, 1, 1), "income_band": "high", "risk_tolerance": 1,
        "disabled": True, "rm_id": "RM1", "branch_id": "BR1", "opened_at": m.later(),
        "closed_at": None, "name": "New", "phone": "0",
    }  # fmt: skip
    if m.draw(st.booleans()):
        cu = pd.concat(
            [cu, pd.DataFrame([newcomer]).astype(cu.dtypes.to_dict())], ignore_index=True
        )
    out["customers"] = cu
    return out


def _months_after(first: dt.date, months: int) -> dt.date:
    index = first.year * 12 + first.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


BASE: dict = {}


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_events_at_or_after_as_of_never_change_features(data, con, spec, config):
    as_of = data.draw(ANY_DAY)
    frames = bank_frames()
    if ("features", as_of) not in BASE:
        BASE["features", as_of] = _features(con, frames, as_of, spec, config)
    cutoff = pd.Timestamp(as_of, tz="UTC")
    changed = mutate_after(frames, Mutator(data, cutoff))
    after = _features(con, changed, as_of, spec, config)
    pd.testing.assert_frame_equal(after, BASE["features", as_of])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_labels_ignore_everything_after_the_horizon(data, con, config):
    horizon = config.labels.horizon_days
    as_of = data.draw(LABELED_DAY)  # fully labeled in the fixture
    frames = bank_frames()
    if ("labels", as_of) not in BASE:
        BASE["labels", as_of] = _labels(con, frames, as_of, config)
    cutoff = pd.Timestamp(as_of + dt.timedelta(days=horizon), tz="UTC")
    changed = mutate_after(frames, Mutator(data, cutoff))
    # tables the labels do not read may change anywhere in time
    if data.draw(st.booleans()):
        changed["transactions"] = changed["transactions"].iloc[::2]
        changed["sessions"] = changed["sessions"].iloc[0:0]
        changed["holdings"] = changed["holdings"].assign(product_risk=5)
        changed["callbacks"] = changed["callbacks"].iloc[1:]
    after = _labels(con, changed, as_of, config)
    pd.testing.assert_frame_equal(after, BASE["labels", as_of])


def test_an_event_inside_the_horizon_does_change_labels(con, config):
    frames = bank_frames()
    before = _labels(con, frames, T, config).set_index("customer_id")
    assert not before.loc["C3", "complaint"] and not before.loc["C5", "churn"]
    complaints = frames["complaints"]
    inside = complaints[complaints.complaint_id == "K8"].assign(
        complaint_id="KX", opened_at=pd.Timestamp("2024-09-28 23:59", tz="UTC")
    )
    frames["complaints"] = pd.concat([complaints, inside], ignore_index=True)
    customers = frames["customers"].copy()
    customers.loc[customers.customer_id == "C5", "closed_at"] = pd.Timestamp(T, tz="UTC")
    frames["customers"] = customers
    after = _labels(con, frames, T, config).set_index("customer_id")
    assert after.loc["C3", "complaint"]  # opened one minute before T + 90 d
    assert after.loc["C5", "churn"]  # closed at T: still a customer at T, and gone
    features_before = _features(con, bank_frames(), T, default_spec(config), config)
    features_after = _features(con, frames, T, default_spec(config), config)
    pd.testing.assert_frame_equal(features_before, features_after)
