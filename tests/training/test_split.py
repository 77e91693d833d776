"""The time split: the gap rule on hand-made dates, and a proof on the small bank that no
customer's future (anything at or after the first validation as_of) reaches the training rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features.loading import monthly_as_of_dates
from training.dataset import TrainingDataError, frame_hash, load_training_data
from training.split import SplitError, time_split

D = dt.date


def test_gap_rule_on_monthly_dates():
    dates = monthly_as_of_dates(D(2025, 10, 1), 16)  # 2024-07-01 .. 2025-10-01
    split = time_split(dates, horizon_days=90, valid_snapshots=2, test_snapshots=2)
    assert split.test == (D(2025, 9, 1), D(2025, 10, 1))
    # 2025-06-01 + 90 days = 2025-08-30 <= 2025-09-01; 2025-07-01 + 90 = 2025-09-29 is not
    assert split.valid == (D(2025, 5, 1), D(2025, 6, 1))
    # 2025-01-01 + 90 = 2025-04-01 <= 2025-05-01; 2025-02-01 + 90 = 2025-05-02 is not
    assert split.train == tuple(monthly_as_of_dates(D(2025, 1, 1), 7))
    assert split.dropped == (D(2025, 2, 1), D(2025, 3, 1), D(2025, 4, 1), D(2025, 7, 1),
                             D(2025, 8, 1))  # fmt: skip
    for earlier, later in ((split.train, split.valid), (split.valid, split.test)):
        assert all(d + dt.timedelta(days=90) <= later[0] for d in earlier)


def test_gap_rule_counts_exact_days():
    # labels read [T, T + H): a horizon ending exactly on the next part's first date is allowed
    dates = [D(2025, 1, 1), D(2025, 1, 11), D(2025, 1, 21), D(2025, 1, 31)]
    split = time_split(dates, horizon_days=10, valid_snapshots=1, test_snapshots=1)
    assert split.test == (D(2025, 1, 31),)
    assert split.valid == (D(2025, 1, 21),)
    assert split.train == (D(2025, 1, 1), D(2025, 1, 11))
    # one day more and each part must skip a date: nothing is left for training
    with pytest.raises(SplitError, match="1 validation and at least 1 training"):
        time_split(dates, horizon_days=11, valid_snapshots=1, test_snapshots=1)


def test_too_few_snapshots_says_how_many_are_needed():
    dates = monthly_as_of_dates(D(2025, 10, 1), 8)
    with pytest.raises(SplitError, match=r"need up to \d+ dates"):
        time_split(dates, horizon_days=90, valid_snapshots=2, test_snapshots=2)


def test_frames_and_describe():
    dates = monthly_as_of_dates(D(2025, 10, 1), 16)
    split = time_split(dates, 90, 2, 2)
    frame = pd.DataFrame({"as_of": [d for d in dates for _ in range(3)], "x": range(48)})
    train, valid, test = split.frames(frame)
    assert (len(train), len(valid), len(test)) == (21, 6, 6)
    assert set(test["as_of"]) == set(split.test)
    described = split.describe()
    assert described["split_train"] == "2024-07-01..2025-01-01"
    assert described["split_test_snapshots"] == 2


# -- the training set ---------------------------------------------------------------------------
def test_training_data_of_the_small_bank(small_training, config):
    data = small_training
    # 24 months from 2024-01-01: events end 2025-12-31; the newest first-of-month whose 90-day
    # horizon fits is 2025-10-01
    assert data.data_end == D(2026, 1, 1)
    assert data.as_of_dates == tuple(monthly_as_of_dates(D(2025, 10, 1), 16))
    assert data.window() == {"first_as_of": D(2024, 7, 1), "last_as_of": D(2025, 10, 1)}
    assert data.categorical == ("segment", "kind", "income_band")
    frame = data.frame
    assert list(frame.columns) == ["customer_id", "as_of", *data.features, "churn", "complaint"]
    assert len(data.features) == len(data.spec) == 57
    assert all(type(d) is D for d in frame["as_of"].head(3))
    for target in ("churn", "complaint"):
        assert frame[target].dtype == "int64" and set(frame[target].unique()) == {0, 1}
    assert not frame.duplicated(["customer_id", "as_of"]).any()
    assert len(data.data_hash) == 64 and data.data_hash == frame_hash(frame.iloc[::-1])


def test_text_columns_outside_the_spec_are_categorical(small_training):
    from training.dataset import categorical_features

    frame = small_training.frame.head(20).assign(contract="month-to-month", score=1.5)
    features = (*small_training.features, "contract", "score")
    found = categorical_features(frame, features, small_training.spec)
    assert found == ("segment", "kind", "income_band", "contract")


def test_training_data_errors_name_the_dates_and_the_range(small_bank, config):
    from features.loading import open_data

    loaded = open_data(small_bank)
    messages: list[str] = []
    with pytest.raises(TrainingDataError, match=r"2025-11-01 \+ 90 days .* past the data's end"):
        load_training_data(loaded, config, last_as_of="2025-11-01", snapshots=2)
    with pytest.raises(TrainingDataError, match="not after the first event"):
        load_training_data(loaded, config, snapshots=500, progress=messages.append)
    data = load_training_data(loaded, config, last_as_of=D(2025, 3, 1), snapshots=2,
                              progress=messages.append)  # fmt: skip
    assert data.as_of_dates == (D(2025, 2, 1), D(2025, 3, 1))
    assert any("2 labelled snapshots" in m for m in messages)


# -- no leak: the future of the first validation as_of cannot change a training row -------------
def _ts_cut(table: pa.Table, column: str, cut: pd.Timestamp) -> pa.ChunkedArray:
    """Mask of rows whose `column` is at or after `cut` (nulls: false)."""
    scalar = pa.scalar(cut.to_pydatetime(), table.schema.field(column).type)
    return pc.fill_null(pc.greater_equal(table[column], scalar), False)


def _null_where(table: pa.Table, column: str, mask: pa.ChunkedArray) -> pa.Table:
    field = table.schema.field(column)
    values = pc.if_else(mask, pa.scalar(None, field.type), table[column])
    return table.set_column(table.schema.get_field_index(column), field, values)


def cut_bank(src: Path, dst: Path, cut: dt.date) -> dict[str, int]:
    """A copy of the bank with every event at or after `cut` deleted or undone; returns the
    number of rows each table lost or had altered."""
    dst.mkdir(parents=True)
    at = pd.Timestamp(cut, tz="UTC")
    changed: dict[str, int] = {}

    def keep(t: pa.Table, mask: pa.ChunkedArray, name: str) -> pa.Table:
        changed[name] = changed.get(name, 0) + int(pc.sum(mask).as_py() or 0)
        return t.filter(pc.invert(mask))

    def undo(t: pa.Table, column: str, name: str) -> pa.Table:
        mask = _ts_cut(t, column, at)
        changed[name] = changed.get(name, 0) + int(pc.sum(mask).as_py() or 0)
        return _null_where(t, column, mask)

    tables = {p.stem: pq.read_table(p) for p in src.glob("*.parquet")}
    customers = keep(tables["customers"], _ts_cut(tables["customers"], "opened_at", at),
                     "customers")  # fmt: skip
    tables["customers"] = undo(customers, "closed_at", "customers")
    holdings = keep(tables["holdings"], _ts_cut(tables["holdings"], "opened_at", at), "holdings")
    holdings = undo(holdings, "closed_at", "holdings")
    # the holdings balance is the state at the end of the data: halve it
    tables["holdings"] = holdings.set_column(
        holdings.schema.get_field_index("balance"), "balance", pc.multiply(holdings["balance"], 0.5)
    )
    for name in ("transactions", "sessions"):
        tables[name] = keep(tables[name], _ts_cut(tables[name], "ts", at), name)
    complaints = keep(tables["complaints"], _ts_cut(tables["complaints"], "opened_at", at),
                      "complaints")  # fmt: skip
    complaints = undo(complaints, "first_response_at", "complaints")
    tables["complaints"] = undo(complaints, "resolved_at", "complaints")
    callbacks = keep(tables["callbacks"], _ts_cut(tables["callbacks"], "due_at", at), "callbacks")
    later = _ts_cut(callbacks, "done_at", at)  # reached after the cut: still open at the cut
    for column in ("done_at", "outcome", "satisfaction"):
        callbacks = _null_where(callbacks, column, later)
    changed["callbacks"] += int(pc.sum(later).as_py() or 0)
    tables["callbacks"] = callbacks
    balances = tables["balances"]
    month = pc.greater_equal(balances["month"], pa.scalar(cut, pa.date32()))
    tables["balances"] = keep(balances, month, "balances")
    oracle = tables.pop("oracle", None)
    if oracle is not None:
        tables["oracle"] = oracle.filter(pc.less(oracle["as_of"], pa.scalar(cut, pa.date32())))
    for name, table in tables.items():
        pq.write_table(table, dst / f"{name}.parquet")
    return changed


def test_no_customer_future_reaches_the_training_rows(small_bank, small_training, config,
                                                      tmp_path):  # fmt: skip
    s = config.training.split
    horizon = config.labels.horizon_days
    split = time_split(small_training.as_of_dates, horizon, s.valid_snapshots, s.test_snapshots)
    train, _, _ = split.frames(small_training.frame)
    cut = split.valid[0]
    changed = cut_bank(small_bank, tmp_path / "cut", cut)
    assert all(changed[t] > 0 for t in ("transactions", "sessions", "complaints", "callbacks",
                                        "balances", "customers", "holdings"))  # fmt: skip

    cut_rows = load_training_data(
        tmp_path / "cut", config, last_as_of=split.train[-1], snapshots=len(split.train)
    )
    assert cut_rows.as_of_dates == split.train
    expected = train.reset_index(drop=True)
    got = cut_rows.frame.reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)  # features AND labels
    assert frame_hash(got) == frame_hash(expected)


def drop_outcomes_after(src: Path, dst: Path, cut: dt.date) -> None:
    """A copy of the bank where no complaint is opened and no relationship or product closes at
    or after `cut`; everything else (and so the data's range) stays."""
    dst.mkdir(parents=True)
    at = pd.Timestamp(cut, tz="UTC")
    for path in src.glob("*.parquet"):
        table = pq.read_table(path)
        if path.stem in ("customers", "holdings"):
            table = _null_where(table, "closed_at", _ts_cut(table, "closed_at", at))
        if path.stem == "complaints":
            table = table.filter(pc.invert(_ts_cut(table, "opened_at", at)))
        pq.write_table(table, dst / path.name)


def test_the_leak_check_has_teeth(small_bank, small_training, config, tmp_path):
    """Removing the outcomes after the first validation as_of changes the labels of the months
    the split drops before it (their horizon crosses it), never those of the training months."""
    s = config.training.split
    split = time_split(small_training.as_of_dates, config.labels.horizon_days,
                       s.valid_snapshots, s.test_snapshots)  # fmt: skip
    cut = split.valid[0]
    gap = [d for d in split.dropped if split.train[-1] < d < cut]
    assert gap
    drop_outcomes_after(small_bank, tmp_path / "changed", cut)
    changed = load_training_data(
        tmp_path / "changed", config, last_as_of=gap[-1], snapshots=len(split.train) + len(gap)
    ).frame
    full = small_training.frame
    full = full[full["as_of"].isin(set(split.train) | set(gap))].reset_index(drop=True)
    assert changed[["customer_id", "as_of"]].equals(full[["customer_id", "as_of"]])
    in_train = full["as_of"].isin(set(split.train)).to_numpy()
    for target in ("churn", "complaint"):
        differs = (changed[target] != full[target]).to_numpy()
        assert not differs[in_train].any(), target
        assert differs[~in_train].sum() > 10, target
