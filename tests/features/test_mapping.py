"""Bring your own data: YAML column mappings onto the contract (features.mapping, pipeline)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from features.engines import connect
from features.mapping import MappingError, apply_mapping, load_mapping, parse_mapping, rule_labels
from keepwell.config import load_config

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO / ".." / "shared" / "data"
TELCO = SHARED_DATA / "telco_customer_churn.csv"
CDNOW = SHARED_DATA / "cdnow_master.txt"
MAPPINGS = REPO / "conf" / "mappings"


def needs(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path.name} is not in {SHARED_DATA.resolve()} (the shared data folder)")


@pytest.fixture(scope="module")
def duck():
    return connect("duckdb")


@pytest.fixture(scope="module")
def config():
    return load_config()


# ---------------------------------------------------------------- a small purchase log of our own

PURCHASES = """\
 customer_id  date number_of_cds  dollar_value
 00001 20240105  1   10.00
 00001 20240210  2   20.00
 00002 20240115  1   15.50
 00002 20240301  1    0.00
 00003 20240220  3   30.00
 00003 20240425  1   12.00
"""


def purchase_mapping(**override_columns) -> dict:
    columns = {
        "customer_id": "customer_id",
        "ts": {"column": "date", "parse": "%Y%m%d"},
        "amount": {"column": "dollar_value"},
        "direction": {"constant": "in"},
        "channel": {"constant": "web"},
    }
    columns.update(override_columns)
    return {
        "name": "shop",
        "sources": {"purchases": {"file": "log.txt", "format": "whitespace"}},
        "tables": {
            "transactions": {
                "from": "purchases",
                "columns": columns,
                "keep": {"amount": {"gt": 0}},
            },
            "customers": {
                "from": "purchases",
                "group_by": "customer_id",
                "columns": {
                    "customer_id": "customer_id",
                    "opened_at": {"column": "date", "parse": "%Y%m%d", "aggregate": "min"},
                    "segment": {"constant": "retail"},
                    "kind": {"constant": "individual"},
                    "risk_tolerance": {"constant": 3},
                    "disabled": {"constant": False},
                    "rm_id": {"constant": "none"},
                    "branch_id": {"constant": "web"},
                },
            },
        },
        "labels": {"churn": {"rule": "no_transaction", "horizon_days": 30}},
    }


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "log.txt").write_text(PURCHASES)
    return tmp_path


def write_mapping(folder: Path, data: dict) -> Path:
    path = folder / "mapping.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_whitespace_log_maps_to_contract_tables(shop: Path, duck) -> None:
    mapped = apply_mapping(write_mapping(shop, purchase_mapping()), shop, duck)
    txns = mapped.tables["transactions"].order_by(["customer_id", "ts"]).to_pyarrow().to_pylist()
    # the zero-dollar purchase is dropped by `keep`; the rest keep their values
    assert [(t["customer_id"], t["ts"].date(), t["amount"]) for t in txns] == [
        ("00001", dt.date(2024, 1, 5), 10.0),
        ("00001", dt.date(2024, 2, 10), 20.0),
        ("00002", dt.date(2024, 1, 15), 15.5),
        ("00003", dt.date(2024, 2, 20), 30.0),
        ("00003", dt.date(2024, 4, 25), 12.0),
    ]
    assert {t["direction"] for t in txns} == {"in"} and {t["channel"] for t in txns} == {"web"}
    assert all(t["fee"] is None for t in txns)
    assert str(mapped.tables["transactions"].schema()["ts"]) == "timestamp('UTC')"
    customers = mapped.tables["customers"].order_by("customer_id").to_pyarrow().to_pylist()
    # opened at the first purchase, including the zero-dollar one (customers have no `keep`)
    assert [(c["customer_id"], c["opened_at"].date()) for c in customers] == [
        ("00001", dt.date(2024, 1, 5)),
        ("00002", dt.date(2024, 1, 15)),
        ("00003", dt.date(2024, 2, 20)),
    ]
    assert all(c["closed_at"] is None and c["risk_tolerance"] == 3 for c in customers)
    assert any("left null: birth_date" in n for n in mapped.notes)


def test_no_transaction_labels_mark_late_snapshots_unlabeled(shop: Path, duck) -> None:
    mapped = apply_mapping(write_mapping(shop, purchase_mapping()), shop, duck)
    dates = [dt.date(2024, 2, 1), dt.date(2024, 3, 1), dt.date(2024, 4, 10)]
    labels = rule_labels(mapped, dates, data_end=dt.date(2024, 4, 26))
    got = {
        (r["customer_id"], r["as_of"]): (r["churn"], r["labeled"])
        for r in labels.to_pyarrow().to_pylist()
    }
    assert got == {
        # 2024-02-01, horizon [02-01, 03-02): 00001 buys 02-10; 00002 only a 0-dollar item 03-01
        ("00001", dt.date(2024, 2, 1)): (False, True),
        ("00002", dt.date(2024, 2, 1)): (True, True),
        # 2024-03-01: nobody buys before 03-31 (00003 was opened 02-20, buys again 04-25)
        ("00001", dt.date(2024, 3, 1)): (True, True),
        ("00002", dt.date(2024, 3, 1)): (True, True),
        ("00003", dt.date(2024, 3, 1)): (True, True),
        # 2024-04-10 + 30 days runs past the end of the log: unlabeled, not negative
        ("00001", dt.date(2024, 4, 10)): (None, False),
        ("00002", dt.date(2024, 4, 10)): (None, False),
        ("00003", dt.date(2024, 4, 10)): (None, False),
    }


def test_missing_column_names_key_file_and_column(shop: Path, duck) -> None:
    bad = purchase_mapping(amount={"column": "dollar_val"})
    with pytest.raises(MappingError) as err:
        apply_mapping(write_mapping(shop, bad), shop, duck)
    text = str(err.value)
    assert "tables.transactions.columns.amount" in text
    assert "log.txt" in text and "'dollar_val'" in text
    assert "dollar_value" in text  # lists the columns the file does have


def test_value_map_must_cover_every_value(tmp_path: Path, duck) -> None:
    (tmp_path / "people.csv").write_text("id,since,vip\na,2024-01-01,Yes\nb,2024-02-01,Maybe\n")
    data = {
        "sources": {"people": {"file": "people.csv"}},
        "tables": {
            "customers": {
                "from": "people",
                "columns": {
                    "customer_id": "id",
                    "opened_at": "since",
                    "segment": {"column": "vip", "values": {"Yes": "hnw", "No": "retail"}},
                    "kind": {"constant": "individual"},
                    "risk_tolerance": {"constant": 3},
                    "disabled": {"constant": False},
                    "rm_id": {"constant": "x"},
                    "branch_id": {"constant": "x"},
                },
            }
        },
    }
    with pytest.raises(MappingError, match=r"columns\.segment\.values.*'vip'.*\['Maybe'\]"):
        apply_mapping(write_mapping(tmp_path, data), tmp_path, duck)
    data["tables"]["customers"]["columns"]["segment"]["default"] = "retail"
    mapped = apply_mapping(write_mapping(tmp_path, data), tmp_path, duck)
    rows = mapped.tables["customers"].order_by("customer_id").to_pyarrow().to_pylist()
    assert [(r["customer_id"], r["segment"], r["opened_at"].isoformat()) for r in rows] == [
        ("a", "hnw", "2024-01-01T00:00:00+00:00"),
        ("b", "retail", "2024-02-01T00:00:00+00:00"),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["tables"]["customers"]["columns"].pop("segment"), r"required column.*segment"),
        (
            lambda m: m["tables"]["transactions"]["columns"].update(colour="amount"),
            r"tables\.transactions\.columns\.colour: not a column of the contract",
        ),
        (lambda m: m["tables"].update(ledger={"from": "purchases"}), r"tables\.ledger: not a"),
        (
            lambda m: m["tables"]["transactions"].update({"from": "nowhere"}),
            r"tables\.transactions\.from: must name one of the sources",
        ),
        (
            lambda m: m["labels"]["churn"].update(horizon_days=0),
            r"labels\.churn\.horizon_days",
        ),
        (lambda m: m["tables"].pop("customers"), r"tables\.customers: every mapping"),
    ],
)
def test_structural_errors_name_the_key(shop: Path, duck, change, message) -> None:
    data = purchase_mapping()
    change(data)
    with pytest.raises(MappingError, match=message):
        mapped = parse_mapping(data, shop / "mapping.yaml")
        apply_mapping(mapped, shop, duck)


def test_the_mapped_log_builds_features_with_the_pipeline(shop: Path, config, tmp_path) -> None:
    from features.pipeline import build_snapshot_table, write_features

    mapping = write_mapping(shop, purchase_mapping())
    build = build_snapshot_table(shop, [dt.date(2024, 3, 1)], config, mapping=mapping, labels=True)
    rows = {r["customer_id"]: r for r in build.to_pyarrow().to_pylist()}
    assert set(rows) == {"00001", "00002", "00003"}
    counts = {c for c in build.table.columns if c.startswith("txn_count")}
    assert counts, "the transaction features ran on the mapped log"
    assert any("sessions" in s or "complaints" in s for s in build.skipped)
    assert [rows[c]["churn"] for c in sorted(rows)] == [True, True, True]
    out = write_features(
        shop, [dt.date(2024, 3, 1)], config, tmp_path / "f.parquet", mapping=mapping
    )
    assert out.rows == 3 and pq.read_table(out.path).num_rows == 3


# ---------------------------------------------------------------- the two real data sets


def test_telco_mapping_loads_and_builds(config) -> None:
    needs(TELCO)
    from features.pipeline import build_snapshot_table

    mapping = load_mapping(MAPPINGS / "telco.yaml")
    build = build_snapshot_table(
        SHARED_DATA, [mapping.snapshot.as_of], config, mapping=mapping, labels=True
    )
    table = build.to_pyarrow()
    assert table.num_rows == 7043
    df = table.to_pandas()
    assert df["churn"].mean() == pytest.approx(1869 / 7043)
    assert df["customer_id"].is_unique
    assert df["total_charges"].isna().sum() == 11  # blank for new customers
    assert {"tenure_months", "contract", "monthly_charges"} <= set(df.columns)
    assert "gender" not in df.columns
    # every event-based feature is skipped, and the warning lists it
    assert any(s.startswith("txn_count_30d") for s in build.skipped)
    assert any("transactions" in w for w in build.warnings)
    assert "churn" in build.label_columns and "churn" not in build.feature_columns


def test_telco_snapshot_has_one_date(config) -> None:
    needs(TELCO)
    from features.pipeline import AsOfError, build_snapshot_table

    with pytest.raises(AsOfError, match="one date, 2020-02-01"):
        build_snapshot_table(
            SHARED_DATA,
            [dt.date(2020, 1, 15)],
            config,
            mapping=MAPPINGS / "telco.yaml",
        )


def test_cdnow_mapping_runs_point_in_time_features_and_labels(config, duck) -> None:
    needs(CDNOW)
    from features.pipeline import build_snapshot_table, open_data

    data = open_data(SHARED_DATA, mapping=MAPPINGS / "cdnow.yaml", backend=duck)
    assert data.tables["transactions"].count().to_pyarrow().as_py() == 69_659 - 80
    assert data.tables["customers"].count().to_pyarrow().as_py() == 23_570
    assert data.data_end == dt.date(1998, 7, 1)
    dates = [dt.date(1997, 7, 1), dt.date(1998, 1, 1), dt.date(1998, 6, 1)]
    build = build_snapshot_table(data, dates, config, labels=True)
    df = build.to_pyarrow().to_pandas()
    assert len(df) == 3 * 23_570  # every customer's first purchase is in Q1 1997
    assert df.loc[df.as_of.astype(str) == "1998-06-01", "labeled"].eq(False).all()
    assert df.loc[df.as_of.astype(str) == "1998-06-01", "churn"].isna().all()
    early = df[df.as_of.astype(str) == "1997-07-01"]
    assert early.labeled.all() and 0.5 < early.churn.mean() < 0.95
    # point in time: a July 1997 snapshot counts no purchase made on or after 1997-07-01
    txns = data.tables["transactions"].to_pyarrow().to_pandas()
    before = txns[txns.ts < "1997-07-01"]
    assert early.txn_count_180d.sum() == len(before[before.ts >= "1997-01-02"])
    assert any("sessions" in s for s in build.skipped)


def test_mapped_tables_that_break_the_contract_stop_the_pipeline(shop: Path, config) -> None:
    from features.pipeline import open_data
    from keepwell.contract import ContractError

    data = purchase_mapping()
    del data["tables"]["transactions"]["keep"]  # the 0.00 purchase breaks amount > 0
    mapping = write_mapping(shop, data)
    with pytest.raises(ContractError) as err:
        open_data(shop, mapping=mapping)
    text = str(err.value)
    assert "transactions.amount" in text and "1 row" in text
    assert "table_present" not in text  # tables the mapping does not make are not violations
    assert err.value.report.source.endswith(f"through the mapping {mapping}")


def test_two_mapped_folders_on_one_backend_stay_apart(tmp_path: Path, duck) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, log in ((first, PURCHASES), (second, PURCHASES.replace("10.00", "99.00"))):
        folder.mkdir()
        (folder / "log.txt").write_text(log)
    a = apply_mapping(write_mapping(first, purchase_mapping()), first, duck)
    b = apply_mapping(write_mapping(second, purchase_mapping()), second, duck)

    def total(mapped) -> float:
        return mapped.tables["transactions"].amount.sum().to_pyarrow().as_py()

    assert (total(a), total(b)) == (87.5, 176.5)
