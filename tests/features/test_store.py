"""The online store: atomic materialization, lookups, and online rows equal to batch rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from features import store as store_module
from features.store import (
    OnlineStore,
    StoreError,
    UnknownCustomersError,
    default_as_of,
    event_range,
    materialize,
    spec_version,
)

AS_OF = dt.date(2025, 1, 1)


@pytest.fixture
def bank_dir(tmp_path: Path) -> Path:
    from tests.contract_fixtures import valid_bank, write_bank

    return write_bank(tmp_path / "bank", valid_bank())


@pytest.fixture(scope="module")
def config():
    from keepwell.config import load_config

    return load_config()


def snapshot(n: int = 50, as_of: dt.date = AS_OF) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n)],
            "as_of": as_of,
            "txn_count_30d": rng.integers(0, 20, n),
            "txn_amount_30d": rng.random(n) * 1000,
            "segment": rng.choice(["retail", "hnw"], n),
            "is_disabled": rng.random(n) < 0.1,
        }
    )


def two_dates() -> pd.DataFrame:
    return pd.concat([snapshot(as_of=dt.date(2024, 12, 1)), snapshot()], ignore_index=True)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return materialize(two_dates(), tmp_path / "store" / "online.duckdb", AS_OF, ["spec-a"])


def test_materialize_keeps_one_snapshot_with_metadata(store_path: Path) -> None:
    with OnlineStore(store_path) as s:
        assert s.as_of == AS_OF
        assert s.row_count == 50
        assert s.spec_version == spec_version(["spec-a"]) != spec_version(["spec-b"])
        assert s.created_at.tzinfo is not None
        assert abs(dt.datetime.now(dt.UTC) - s.created_at) < dt.timedelta(minutes=5)
        assert s.feature_columns == ["txn_count_30d", "txn_amount_30d", "segment", "is_disabled"]
    con = duckdb.connect(str(store_path), read_only=True)
    assert con.execute("SELECT count(*), min(as_of), max(as_of) FROM features").fetchone() == (
        50,
        AS_OF,
        AS_OF,
    )
    con.close()
    assert sorted(p.name for p in store_path.parent.iterdir()) == ["online.duckdb"]


@pytest.mark.parametrize("preload", [True, False])
def test_lookup_keeps_order_and_reports_unknown_ids(store_path: Path, preload: bool) -> None:
    expected = snapshot().set_index("customer_id")
    with OnlineStore(store_path, preload=preload) as s:
        assert s.preloaded is preload
        assert list(s.customer_ids()) == [f"C{i:04d}" for i in range(50)]
        got = s.lookup(["C0007", "nobody", "C0003", "C0007"])
        assert got["customer_id"].tolist() == ["C0007", "nobody", "C0003", "C0007"]
        assert got["found"].tolist() == [True, False, True, True]
        assert got.loc[1, s.feature_columns].isna().all()
        for i, cid in [(0, "C0007"), (2, "C0003"), (3, "C0007")]:
            assert got.loc[i, "txn_count_30d"] == expected.loc[cid, "txn_count_30d"]
            assert got.loc[i, "txn_amount_30d"] == expected.loc[cid, "txn_amount_30d"]
            assert got.loc[i, "segment"] == expected.loc[cid, "segment"]
        with pytest.raises(UnknownCustomersError) as err:
            s.lookup(["C0001", "ghost-1", "ghost-2"], missing="raise")
        assert err.value.ids == ["ghost-1", "ghost-2"]
        assert len(s.lookup([])) == 0
        with pytest.raises(TypeError):
            s.lookup("C0001")


def test_both_lookup_paths_return_the_same_frame(store_path: Path) -> None:
    ids = [f"C{i:04d}" for i in (5, 1, 49, 0, 22)]
    with OnlineStore(store_path, preload=True) as a, OnlineStore(store_path, preload=False) as b:
        pd.testing.assert_frame_equal(a.lookup(ids), b.lookup(ids))
        assert a.lookup(ids)["txn_count_30d"].dtype == np.int64  # all known: stored dtypes


def test_a_failed_write_leaves_the_old_store(store_path: Path, monkeypatch) -> None:
    before = store_path.read_bytes()
    monkeypatch.setattr(store_module, "METADATA_TABLE", "no such table name")
    with pytest.raises(duckdb.Error):
        materialize(snapshot(), store_path, AS_OF, ["spec-b"])
    assert store_path.read_bytes() == before
    assert sorted(p.name for p in store_path.parent.iterdir()) == ["online.duckdb"]


def test_refuses_bad_snapshots(tmp_path: Path) -> None:
    target = tmp_path / "s.duckdb"
    with pytest.raises(StoreError, match="no feature rows for as_of 2030-01-01"):
        materialize(snapshot(), target, dt.date(2030, 1, 1), [])
    twice = pd.concat([snapshot(), snapshot().head(2)])
    with pytest.raises(StoreError, match=r"customer_id is not unique.*C0000"):
        materialize(twice, target, AS_OF, [])
    with pytest.raises(StoreError, match="online store not found"):
        OnlineStore(target)
    assert not target.exists()


def test_default_as_of_is_the_day_after_the_newest_event() -> None:
    import ibis

    customers = ibis.memtable(
        {
            "customer_id": ["a", "b"],
            "opened_at": pd.to_datetime(["2020-01-01", "2021-06-01"], utc=True),
            "closed_at": pd.to_datetime([None, "2024-03-05 23:59"], utc=True),
        }
    )
    txns = ibis.memtable(
        {"customer_id": ["a"], "ts": pd.to_datetime(["2024-03-04 10:00"], utc=True)}
    )
    callbacks = ibis.memtable(  # a callback due in the future is a plan, not an event
        {"customer_id": ["a"], "due_at": pd.to_datetime(["2024-09-01"], utc=True),
         "done_at": pd.to_datetime([None], utc=True)}
    )  # fmt: skip
    tables = {"customers": customers, "transactions": txns, "callbacks": callbacks}
    assert event_range(tables) == (dt.date(2020, 1, 1), dt.date(2024, 3, 5))
    assert default_as_of(tables) == dt.date(2024, 3, 6)


# ---------------------------------------------------------------- batch rows == online rows


def test_online_rows_equal_batch_rows(tmp_path: Path, bank_dir: Path, config) -> None:
    """The contract test: every column of every customer, looked up online, equals batch."""
    from features.pipeline import build_snapshot_table, materialize_latest, open_data

    data = open_data(bank_dir)
    as_of = data.data_end
    batch = build_snapshot_table(data, [as_of], config).to_pyarrow().to_pandas()
    summary = materialize_latest(bank_dir, tmp_path / "online.duckdb", config)
    assert summary.as_of == as_of and summary.rows == len(batch) > 0
    ids = batch["customer_id"].tolist()[::-1]  # any order
    for preload in (True, False):
        with OnlineStore(summary.path, preload=preload) as s:
            assert s.as_of == as_of
            online = s.lookup(ids)
            assert online["found"].all()
            online = online.drop(columns="found").set_index("customer_id")
            expected = batch.set_index("customer_id").loc[ids]
            assert list(online.columns) == list(expected.columns)
            pd.testing.assert_frame_equal(online, expected, check_exact=True)


def test_nothing_is_materialized_from_data_that_breaks_the_contract(tmp_path: Path, config) -> None:
    from features.pipeline import materialize_latest
    from keepwell.contract import ContractError
    from tests.contract_fixtures import valid_bank, write_bank

    tables = valid_bank()
    tables["transactions"].loc[0, "channel"] = "fax"
    folder = write_bank(tmp_path / "bank", tables)
    target = tmp_path / "store" / "online.duckdb"
    with pytest.raises(ContractError) as err:
        materialize_latest(folder, target, config)
    assert "transactions.channel" in str(err.value) and "fax" in str(err.value)
    assert not target.exists()
    assert not target.parent.exists() or not any(target.parent.iterdir())


def test_an_as_of_outside_the_data_is_a_clear_error(tmp_path: Path, bank_dir: Path, config):
    from features.pipeline import AsOfError, materialize_latest, open_data, write_features

    data = open_data(bank_dir)
    late = data.data_end + dt.timedelta(days=1)
    with pytest.raises(AsOfError, match=rf"as_of {late} outside the data's range.*{data.data_end}"):
        materialize_latest(bank_dir, tmp_path / "online.duckdb", config, as_of=late)
    early = data.first_event
    with pytest.raises(AsOfError, match=f"as_of {early} outside"):
        write_features(bank_dir, [early, data.data_end], config, tmp_path / "f.parquet")
    assert not (tmp_path / "f.parquet").exists()
    assert not (tmp_path / "online.duckdb").exists()
