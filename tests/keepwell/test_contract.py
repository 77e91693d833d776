"""The data contract: schemas, reading, validation, the report and `keepwell validate`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from cli import app as cli
from keepwell.contract import (
    PII_COLUMNS,
    TABLES,
    ContractError,
    ValidationReport,
    Violation,
    open_tables,
    require_valid,
    validate_folder,
    validate_tables,
)
from keepwell.contract.docs import contract_markdown
from keepwell.contract.dtypes import Float, Integer, Timestamp
from tests.contract_fixtures import PII_NAMES, PII_PHONES, valid_bank, write_bank

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-contract.md"
Bank = dict[str, pd.DataFrame]


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide console, so a violation's table row is one line of CLI output."""
    monkeypatch.setattr(cli, "console", Console(width=400))


def run_validate(tmp_path: Path, folder: Path):
    args = ["--workspace", str(tmp_path / "ws"), "validate", str(folder)]
    return CliRunner().invoke(cli.app, args)


@pytest.fixture
def cli_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run `keepwell validate FOLDER` once; return the report the command printed and its result."""
    import keepwell.contract

    seen: list[ValidationReport] = []
    real = keepwell.contract.validate_folder

    def recording(path):
        seen.append(real(path))
        return seen[-1]

    monkeypatch.setattr(keepwell.contract, "validate_folder", recording)

    def run(folder: Path):
        result = run_validate(tmp_path, folder)
        assert len(seen) == 1, result.output
        return seen.pop(), result

    return run


def _set(table: str, row: int, column: str, value: object) -> Callable[[Bank], None]:
    def mutate(bank: Bank) -> None:
        bank[table].loc[row, column] = value

    return mutate


def broken(tmp_path: Path, mutate: Callable[[Bank], None], fmt: str = "parquet") -> Path:
    bank = valid_bank()
    mutate(bank)
    return write_bank(tmp_path / "bank", bank, fmt=fmt)


def only(report: ValidationReport, table: str, check: str) -> Violation:
    """The one violation of `check` on `table`, failing with the whole report otherwise."""
    found = [v for v in report.violations if v.table == table and v.check == check]
    assert len(found) == 1, str(report)
    return found[0]


def assert_shown(result, violation: Violation) -> str:
    """The command exited 1 and showed the violation's table, column and check on one row."""
    assert result.exit_code == 1, result.output
    row = [
        line
        for line in result.output.splitlines()
        if violation.table in line and violation.check in line and violation.column in line
    ]
    assert row, result.output
    return result.output


# --- valid data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_valid_bank_passes(tmp_path: Path, cli_validate, fmt: str) -> None:
    bank = valid_bank(oracle=True)
    report, result = cli_validate(write_bank(tmp_path / "bank", bank, fmt=fmt))
    assert report.ok, str(report)
    assert report.rows == {name: len(df) for name, df in bank.items()}
    assert result.exit_code == 0, result.output
    assert f"9 tables, {sum(map(len, bank.values())):,} rows checked" in result.output


def test_oracle_and_fee_are_optional_and_extra_columns_are_notes(tmp_path: Path) -> None:
    def mutate(bank: Bank) -> None:
        bank["transactions"] = bank["transactions"].drop(columns="fee")
        bank["sessions"]["device"] = "ios"

    report = validate_folder(broken(tmp_path, mutate))
    assert report.ok, str(report)
    assert "sessions: extra columns not in the contract: device" in report.notes
    assert "optional table oracle not provided" in report.notes


def test_physical_widths_and_naive_timestamps_are_accepted(tmp_path: Path) -> None:
    def mutate(bank: Bank) -> None:
        bank["customers"]["risk_tolerance"] = bank["customers"]["risk_tolerance"].astype("int8")
        bank["rms"]["capacity_per_day"] = bank["rms"]["capacity_per_day"].astype("uint16")
        bank["transactions"]["amount"] = bank["transactions"]["amount"].astype("float32")
        ts = bank["sessions"]["ts"].dt.tz_localize(None).astype("datetime64[s]")
        bank["sessions"]["ts"] = ts

    assert validate_folder(broken(tmp_path, mutate)).ok


def test_type_families() -> None:
    assert Integer().accepts(dt.int8) and Integer().accepts(dt.uint64)
    assert not Integer().accepts(dt.float64)
    assert Float().accepts(dt.float32) and not Float().accepts(dt.Decimal(10, 2))
    assert Timestamp().accepts(dt.Timestamp(scale=9))
    assert Timestamp().accepts(dt.Timestamp(timezone="UTC", scale=3))
    assert not Timestamp().accepts(dt.Timestamp(timezone="Europe/Zurich"))
    assert not Timestamp().accepts(dt.date)


def test_pandera_itself_accepts_the_valid_bank(tmp_path: Path) -> None:
    """The models are real pandera schemas: pandera's own validation agrees on valid data."""
    tables = open_tables(write_bank(tmp_path / "bank", valid_bank(oracle=True)))
    for name, table in tables.items():
        TABLES[name].model.validate(table, lazy=True)


# --- the failures the brief names, each through the report and the CLI --------------------------


def test_missing_column(tmp_path: Path, cli_validate) -> None:
    folder = broken(tmp_path, lambda b: b["transactions"].drop(columns="channel", inplace=True))
    report, result = cli_validate(folder)
    v = only(report, "transactions", "column_present")
    assert v.columns == ("channel",)
    assert_shown(result, v)


def test_wrong_type(tmp_path: Path, cli_validate) -> None:
    def mutate(bank: Bank) -> None:
        bank["transactions"]["amount"] = bank["transactions"]["amount"].astype(str)

    report, result = cli_validate(broken(tmp_path, mutate))
    v = only(report, "transactions", "dtype")
    assert v.columns == ("amount",)
    assert v.rule == "expected float, got string"
    assert v.examples[0] == {"amount": "200.0"}
    # a mistyped column is not checked further (no bogus "> 0" on strings)
    assert [x.check for x in report.violations if x.table == "transactions"] == ["dtype"]
    assert_shown(result, v)


def test_unknown_category(tmp_path: Path, cli_validate) -> None:
    report, result = cli_validate(broken(tmp_path, _set("transactions", 2, "channel", "fax")))
    v = only(report, "transactions", "isin")
    assert (v.columns, v.count) == (("channel",), 1)
    assert v.rule == "one of branch, app, web, phone"
    assert v.examples == ({"customer_id": "C002", "ts": v.examples[0]["ts"], "channel": "fax"},)
    assert "channel='fax'" in assert_shown(result, v)


def test_duplicate_key(tmp_path: Path, cli_validate) -> None:
    def mutate(bank: Bank) -> None:
        customers = bank["customers"]
        bank["customers"] = pd.concat([customers, customers.iloc[[1]]], ignore_index=True)

    report, result = cli_validate(broken(tmp_path, mutate))
    v = only(report, "customers", "unique")
    assert (v.columns, v.count) == (("customer_id",), 2)
    assert [row["customer_id"] for row in v.examples] == ["C002", "C002"]
    assert_shown(result, v)


def test_duplicate_composite_key(tmp_path: Path) -> None:
    # C001 holds DEP-1 twice
    report = validate_folder(broken(tmp_path, _set("holdings", 1, "product_id", "DEP-1")))
    v = only(report, "holdings", "unique")
    assert (v.columns, v.count) == (("customer_id", "product_id"), 2)


def test_time_order(tmp_path: Path, cli_validate) -> None:
    def mutate(bank: Bank) -> None:
        c = bank["complaints"]
        c.loc[0, "resolved_at"] = c.loc[0, "opened_at"] - pd.Timedelta(hours=1)

    report, result = cli_validate(broken(tmp_path, mutate))
    v = only(report, "complaints", "resolved_after_opened")
    assert (v.columns, v.count) == (("resolved_at", "opened_at"), 1)
    assert v.examples[0]["complaint_id"] == "K1"
    # resolved before the first response, too
    assert only(report, "complaints", "resolved_after_response").count == 1
    assert_shown(result, v)


def test_null_in_non_null_column(tmp_path: Path, cli_validate) -> None:
    report, result = cli_validate(broken(tmp_path, _set("rms", 1, "branch_id", None)))
    v = only(report, "rms", "not_nullable")
    assert (v.columns, v.count) == (("branch_id",), 1)
    assert v.examples == ({"rm_id": "R2", "branch_id": None},)
    assert_shown(result, v)


def test_unknown_customer_in_transactions(tmp_path: Path, cli_validate) -> None:
    report, result = cli_validate(broken(tmp_path, _set("transactions", 3, "customer_id", "C999")))
    v = only(report, "transactions", "foreign_key")
    assert (v.columns, v.count) == (("customer_id",), 1)
    assert v.rule == "must exist in customers.customer_id"
    assert v.examples[0]["customer_id"] == "C999"
    assert_shown(result, v)


def test_csv_with_a_bad_timestamp(tmp_path: Path, cli_validate) -> None:
    folder = write_bank(tmp_path / "bank", fmt="csv")
    path = folder / "transactions.csv"
    text = path.read_text()
    assert "2024-02-10T14:00:00Z" in text
    path.write_text(text.replace("2024-02-10T14:00:00Z", "2024-02-30T14:00:00Z"))
    report, result = cli_validate(folder)
    v = only(report, "transactions", "parse")
    assert (v.columns, v.count) == (("ts",), 1)
    assert v.examples == ({"customer_id": "C001", "ts": "2024-02-30T14:00:00Z"},)
    # the value is reported once, as unparseable, not again as a null
    assert [x.check for x in report.violations] == ["parse"]
    assert "2024-02-30T14:00:00Z" in assert_shown(result, v)


def test_csv_with_a_bad_boolean_and_integer(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "bank", fmt="csv")
    path = folder / "customers.csv"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(",true,", ",yes,").replace(",2,", ",two,")
    path.write_text("\n".join(lines) + "\n")
    report = validate_folder(folder)
    parse = {v.columns: v for v in report.violations if v.check == "parse"}
    assert set(parse) == {("disabled",), ("risk_tolerance",)}, str(report)
    assert parse[("disabled",)].examples[0]["disabled"] == "yes"


def test_pii_is_never_printed(tmp_path: Path, cli_validate) -> None:
    def mutate(bank: Bank) -> None:
        customers = bank["customers"]
        customers["segment"] = "vip"  # every customer row becomes an example
        bank["customers"] = pd.concat([customers, customers.iloc[[0]]], ignore_index=True)

    folder = broken(tmp_path, mutate)
    report, result = cli_validate(folder)
    output = assert_shown(result, only(report, "customers", "isin"))
    with pytest.raises(ContractError) as caught:
        require_valid(folder)
    for text in (output, str(caught.value), str(report.violations)):
        # the bank's folder is named in the text: its temporary path holds pytest's run number,
        # which may contain a phone number's last digits ("pytest-51")
        text = text.replace(str(tmp_path), "<tmp>")
        assert "Z***" in text  # the rows are shown, masked
        for secret in (*PII_NAMES, *(p for p in PII_PHONES if p)):
            assert secret not in text
            assert secret.split()[-1] not in text  # surname, last phone digits group
    assert {"name", "phone"} == PII_COLUMNS


# --- other rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "table", "check", "columns"),
    [
        (_set("customers", 0, "risk_tolerance", 6), "customers", "in_range", ("risk_tolerance",)),
        (_set("holdings", 0, "balance", -1.0), "holdings", "greater_than_or_equal_to",
         ("balance",)),
        (_set("holdings", 0, "balance", float("nan")), "holdings", "not_nullable", ("balance",)),
        (_set("transactions", 0, "amount", 0.0), "transactions", "greater_than", ("amount",)),
        (_set("transactions", 0, "fee", -0.5), "transactions", "greater_than_or_equal_to",
         ("fee",)),
        (_set("balances", 0, "month", pd.Timestamp("2024-01-15").date()), "balances",
         "first_day_of_month", ("month",)),
        (_set("customers", 3, "closed_at", pd.Timestamp("2000-01-01", tz="UTC")), "customers",
         "closed_after_opened", ("closed_at", "opened_at")),
        (_set("callbacks", 1, "satisfaction", 4), "callbacks", "satisfaction_only_when_reached",
         ("satisfaction", "outcome")),
        (_set("callbacks", 0, "done_at", pd.NaT), "callbacks", "done_exactly_when_reached",
         ("done_at", "outcome")),
        (_set("callbacks", 2, "done_at", pd.Timestamp("2024-01-25", tz="UTC")), "callbacks",
         "done_exactly_when_reached", ("done_at", "outcome")),
        (_set("customers", 0, "rm_id", "R9"), "customers", "foreign_key", ("rm_id",)),
        (_set("rms", 0, "capacity_per_day", 0), "rms", "greater_than", ("capacity_per_day",)),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)  # fmt: skip
def test_rule(tmp_path: Path, mutate, table: str, check: str, columns: tuple[str, ...]) -> None:
    report = validate_folder(broken(tmp_path, mutate))
    v = only(report, table, check)
    assert (v.columns, v.count) == (columns, 1)
    assert len(report.violations) == 1, str(report)


def test_oracle_probabilities(tmp_path: Path) -> None:
    bank = valid_bank(oracle=True)
    bank["oracle"].loc[0, "p_churn"] = 1.5
    v = only(validate_folder(write_bank(tmp_path / "bank", bank)), "oracle", "in_range")
    assert (v.columns, v.rule) == (("p_churn",), "in [0, 1]")


# --- reading ------------------------------------------------------------------------------------


def test_missing_folder(tmp_path: Path) -> None:
    report = validate_folder(tmp_path / "nowhere")
    assert [(v.table, v.check) for v in report.violations] == [("(folder)", "folder_exists")]
    assert "does not exist" in report.violations[0].rule
    assert run_validate(tmp_path, tmp_path / "nowhere").exit_code == 1


def test_missing_required_table(tmp_path: Path, cli_validate) -> None:
    folder = write_bank(tmp_path / "bank")
    (folder / "callbacks.parquet").unlink()
    report, result = cli_validate(folder)
    assert_shown(result, only(report, "callbacks", "table_present"))


def test_unreadable_file(tmp_path: Path, cli_validate) -> None:
    folder = write_bank(tmp_path / "bank")
    (folder / "sessions.parquet").write_bytes(b"this is not parquet")
    report, result = cli_validate(folder)
    v = only(report, "sessions", "readable")
    assert "sessions.parquet" in v.rule
    assert not [x for x in report.violations if x.check == "table_present"]
    assert_shown(result, v)


def test_ragged_csv_is_unreadable_and_its_line_is_not_echoed(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "bank", fmt="csv")
    path = folder / "customers.csv"
    lines = path.read_text().splitlines()
    lines[2] += ",surplus,Zelda Quixote"
    path.write_text("\n".join(lines) + "\n")
    report = validate_folder(folder)
    v = only(report, "customers", "readable")
    assert "customers.csv" in v.rule
    assert "Quixote" not in str(report)


def test_one_file_per_table(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "bank")
    write_bank(tmp_path / "bank", {"rms": valid_bank()["rms"]}, fmt="csv")
    v = only(validate_folder(folder), "rms", "single_file")
    assert v.rule == "one file per table, found rms.parquet and rms.csv"


def test_open_tables_is_lazy_and_typed(tmp_path: Path) -> None:
    tables = open_tables(write_bank(tmp_path / "bank", fmt="csv"))
    assert set(tables) == set(TABLES) - {"oracle"}
    schema = tables["customers"].schema()
    assert schema["risk_tolerance"].is_integer() and schema["disabled"].is_boolean()
    assert schema["opened_at"] == dt.Timestamp(timezone="UTC")
    assert schema["birth_date"].is_date()
    with pytest.raises(ContractError):
        open_tables(tmp_path / "nowhere")


# --- the API used by later stages ---------------------------------------------------------------


def test_validate_tables_on_ibis_tables() -> None:
    bank = valid_bank()
    bank["sessions"].loc[0, "channel"] = "branch"
    report = validate_tables({name: ibis.memtable(df) for name, df in bank.items()})
    v = only(report, "sessions", "isin")
    assert v.rule == "one of app, web"


def test_require_valid(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "bank")
    tables = require_valid(folder)
    assert tables["customers"].count().to_pyarrow().as_py() == 5
    bank = valid_bank()
    bank["transactions"].loc[0, "direction"] = "sideways"
    with pytest.raises(ContractError) as caught:
        require_valid(write_bank(tmp_path / "bad", bank))
    assert not caught.value.report.ok
    assert "transactions.direction: isin - one of in, out (1 row)" in str(caught.value)


def test_large_tables_are_never_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only aggregates (one row) and up to five example rows are ever materialised."""
    bank = valid_bank()
    n = 5_000
    txns = bank["transactions"]
    bank["transactions"] = txns.iloc[[i % len(txns) for i in range(n)]].reset_index(drop=True)
    bank["transactions"].loc[:99, "channel"] = "fax"
    folder = write_bank(tmp_path / "bank", bank)

    sizes: list[int] = []
    to_pyarrow = ibis.expr.types.Expr.to_pyarrow

    def spy(self, *args, **kwargs):
        result = to_pyarrow(self, *args, **kwargs)
        sizes.append(getattr(result, "num_rows", 1))
        return result

    def refuse(self, *args, **kwargs):
        raise AssertionError("the contract must not load a table into pandas")

    monkeypatch.setattr(ibis.expr.types.Expr, "to_pyarrow", spy)
    monkeypatch.setattr(ibis.expr.types.Expr, "execute", refuse)
    monkeypatch.setattr(ibis.expr.types.Table, "to_pandas", refuse)
    monkeypatch.setattr(ibis.expr.types.Value, "to_pandas", refuse)
    v = only(validate_folder(folder), "transactions", "isin")
    assert v.count == 100 and len(v.examples) == 5
    assert sizes and max(sizes) <= 5


# --- the documentation --------------------------------------------------------------------------


def test_doc_is_generated_from_the_schemas() -> None:
    assert DOC.read_text(encoding="utf-8") == contract_markdown(), (
        "docs/data-contract.md is stale: python -m keepwell.contract.docs docs/data-contract.md"
    )


def test_doc_names_every_table_and_column() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name, spec in TABLES.items():
        assert f"## `{name}`" in text
        for column in spec.schema.columns:
            assert f"| `{column}` |" in text


def test_every_row_rule_declares_columns_of_its_table() -> None:
    for spec in TABLES.values():
        for check in spec.schema.checks:
            columns = check.statistics["columns"]
            assert columns and set(columns) <= set(spec.schema.columns), check.name
