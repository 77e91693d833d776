"""The bank's tables, declared once as pandera Ibis models (DESIGN.md section 2).

Column types, nullability, allowed values, ranges and keys are pandera fields; rules across the
columns of one row are pandera dataframe checks whose predicate is an Ibis expression (true for a
good row, null-safe), with the columns they read in `statistics["columns"]`. What pandera cannot
express - references between tables, which tables are required, which columns identify a row in
an error message - is declared beside the models in `TABLES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import ibis.expr.types as ir
import pandera.ibis as pa
from pandera.api.ibis.container import DataFrameSchema
from pandera.api.ibis.types import IbisData

from keepwell.contract.dtypes import Boolean, Date, Float, Integer, String, Timestamp

SEGMENTS = ("retail", "hnw", "institutional")
KINDS = ("individual", "corporate")
INCOME_BANDS = ("low", "middle", "high", "very_high")
PRODUCT_TYPES = ("deposit", "fund", "bond", "equity", "insurance", "structured", "loan")
DIRECTIONS = ("in", "out")
TXN_CHANNELS = ("branch", "app", "web", "phone")
SESSION_CHANNELS = ("app", "web")
COMPLAINT_CATEGORIES = ("fees", "service", "product", "digital", "advice", "other")
SEVERITIES = ("low", "medium", "high")
CALLBACK_REASONS = ("post_sale", "quarterly", "complaint", "risk")
CALLBACK_OUTCOMES = ("reached", "no_answer", "declined", "holdout")

PII = {"pii": True}


def row_rule(*columns: str, description: str) -> Any:
    """A pandera dataframe check over `columns` of one row; the method returns good rows as true."""
    return pa.dataframe_check(statistics={"columns": list(columns)}, description=description)


def _not_before(later: ir.Column, earlier: ir.Column) -> ir.BooleanColumn:
    """`later >= earlier`, true when either side is null."""
    return later.isnull() | earlier.isnull() | (later >= earlier)


class Customers(pa.DataFrameModel):
    """One row per customer (person or company) the bank has had a relationship with."""

    customer_id: String = pa.Field(unique=True, description="The customer's key.")
    segment: String = pa.Field(isin=SEGMENTS, description="Service segment.")
    kind: String = pa.Field(isin=KINDS, description="Individual or corporate.")
    birth_date: Date = pa.Field(nullable=True, description="Date of birth (individuals).")
    income_band: String = pa.Field(isin=INCOME_BANDS, nullable=True, description="Income band.")
    risk_tolerance: Integer = pa.Field(
        in_range={"min_value": 1, "max_value": 5}, description="Assessed risk tolerance, 1-5."
    )
    disabled: Boolean = pa.Field(description="Needs special care (disability).")
    rm_id: String = pa.Field(description="The customer's relationship manager.")
    branch_id: String = pa.Field(description="Home branch.")
    opened_at: Timestamp = pa.Field(description="When the relationship began.")
    closed_at: Timestamp = pa.Field(nullable=True, description="When it ended; null while open.")
    name: String = pa.Field(nullable=True, metadata=PII, description="Full name.")
    phone: String = pa.Field(nullable=True, metadata=PII, description="Phone number.")

    @row_rule("closed_at", "opened_at", description="closed_at is not before opened_at")
    def closed_after_opened(cls, data: IbisData) -> ir.BooleanColumn:
        return _not_before(data.table.closed_at, data.table.opened_at)


class Holdings(pa.DataFrameModel):
    """Products a customer holds or held; one row per (customer_id, product_id)."""

    customer_id: String = pa.Field(description="Holder.")
    product_id: String = pa.Field(description="Product (account, fund, policy...).")
    product_type: String = pa.Field(isin=PRODUCT_TYPES, description="Kind of product.")
    product_risk: Integer = pa.Field(
        in_range={"min_value": 1, "max_value": 5}, description="Product risk level, 1-5."
    )
    opened_at: Timestamp = pa.Field(description="When the holding began.")
    closed_at: Timestamp = pa.Field(nullable=True, description="When it ended; null while held.")
    balance: Float = pa.Field(
        ge=0,
        description=(
            "Balance at the end of the data (the export), not at any as_of: no feature reads it."
        ),
    )

    class Config:
        unique = ("customer_id", "product_id")

    @row_rule("closed_at", "opened_at", description="closed_at is not before opened_at")
    def closed_after_opened(cls, data: IbisData) -> ir.BooleanColumn:
        return _not_before(data.table.closed_at, data.table.opened_at)


class Balances(pa.DataFrameModel):
    """Monthly assets under management per customer."""

    customer_id: String = pa.Field(description="Customer.")
    month: Date = pa.Field(description="The month, as its first day.")
    aum: Float = pa.Field(
        ge=0, description="Closing balance at the end of the month: usable from the next month on."
    )

    class Config:
        unique = ("customer_id", "month")

    @pa.check("month", name="first_day_of_month", description="month is the first day of a month")
    def first_day_of_month(cls, data: IbisData) -> ir.BooleanColumn:
        return data.table[data.key].day() == 1


class Transactions(pa.DataFrameModel):
    """Money moving in or out of a customer's accounts."""

    customer_id: String = pa.Field(description="Customer.")
    ts: Timestamp = pa.Field(description="When it happened.")
    amount: Float = pa.Field(gt=0, description="Amount, always positive; see direction.")
    direction: String = pa.Field(isin=DIRECTIONS, description="Money in or out.")
    channel: String = pa.Field(isin=TXN_CHANNELS, description="Where it was made.")
    fee: Float | None = pa.Field(nullable=True, ge=0, description="Optional: fee charged.")


class Sessions(pa.DataFrameModel):
    """Digital log-ins."""

    customer_id: String = pa.Field(description="Customer.")
    ts: Timestamp = pa.Field(description="Log-in time.")
    channel: String = pa.Field(isin=SESSION_CHANNELS, description="App or web.")


class Complaints(pa.DataFrameModel):
    """Complaints with their service-level clock."""

    complaint_id: String = pa.Field(unique=True, description="The complaint's key.")
    customer_id: String = pa.Field(description="Who complained.")
    opened_at: Timestamp = pa.Field(description="When it was received.")
    first_response_at: Timestamp = pa.Field(nullable=True, description="First response.")
    resolved_at: Timestamp = pa.Field(nullable=True, description="Resolution; null while open.")
    category: String = pa.Field(isin=COMPLAINT_CATEGORIES, description="What it is about.")
    severity: String = pa.Field(isin=SEVERITIES, description="How serious.")

    @row_rule(
        "first_response_at", "opened_at", description="first_response_at is not before opened_at"
    )
    def responded_after_opened(cls, data: IbisData) -> ir.BooleanColumn:
        return _not_before(data.table.first_response_at, data.table.opened_at)

    @row_rule("resolved_at", "opened_at", description="resolved_at is not before opened_at")
    def resolved_after_opened(cls, data: IbisData) -> ir.BooleanColumn:
        return _not_before(data.table.resolved_at, data.table.opened_at)

    @row_rule(
        "resolved_at",
        "first_response_at",
        description="resolved_at is not before first_response_at",
    )
    def resolved_after_response(cls, data: IbisData) -> ir.BooleanColumn:
        return _not_before(data.table.resolved_at, data.table.first_response_at)


class Callbacks(pa.DataFrameModel):
    """Callback tasks: due, done, and what came of them."""

    callback_id: String = pa.Field(unique=True, description="The task's key.")
    customer_id: String = pa.Field(description="Customer to call.")
    reason: String = pa.Field(isin=CALLBACK_REASONS, description="Why the call is due.")
    due_at: Timestamp = pa.Field(description="When it is due.")
    done_at: Timestamp = pa.Field(nullable=True, description="When the customer was reached.")
    outcome: String = pa.Field(
        isin=CALLBACK_OUTCOMES, nullable=True, description="Result; null while still open."
    )
    satisfaction: Integer = pa.Field(
        in_range={"min_value": 1, "max_value": 5},
        nullable=True,
        description="E-questionnaire score 1-5, only when reached.",
    )

    @row_rule(
        "satisfaction",
        "outcome",
        description="satisfaction is given only when outcome is 'reached'",
    )
    def satisfaction_only_when_reached(cls, data: IbisData) -> ir.BooleanColumn:
        t = data.table
        return t.satisfaction.isnull() | (t.outcome == "reached").fill_null(False)

    @row_rule("done_at", "outcome", description="done_at is set exactly when outcome is 'reached'")
    def done_exactly_when_reached(cls, data: IbisData) -> ir.BooleanColumn:
        t = data.table
        return t.done_at.notnull() == (t.outcome == "reached").fill_null(False)


class Rms(pa.DataFrameModel):
    """Relationship managers and how many callbacks each can make a day."""

    rm_id: String = pa.Field(unique=True, description="The RM's key.")
    branch_id: String = pa.Field(description="The RM's branch.")
    capacity_per_day: Integer = pa.Field(gt=0, description="Callbacks per working day.")


class Oracle(pa.DataFrameModel):
    """Demo bank only: the simulator's true probabilities per customer and as-of date."""

    customer_id: String = pa.Field(description="Customer.")
    as_of: Date = pa.Field(description="As-of date.")
    p_churn: Float = pa.Field(
        in_range={"min_value": 0, "max_value": 1}, description="True P(churn)."
    )
    p_complaint: Float = pa.Field(
        in_range={"min_value": 0, "max_value": 1}, description="True P(complaint)."
    )
    callback_effect: Float = pa.Field(
        in_range={"min_value": -1, "max_value": 1}, description="True effect of a callback."
    )

    class Config:
        unique = ("customer_id", "as_of")


@dataclass(frozen=True)
class Reference:
    """`column` of the table must exist in `table.target`."""

    column: str
    table: str
    target: str


@dataclass(frozen=True)
class TableSpec:
    name: str
    model: type[pa.DataFrameModel]
    id_columns: tuple[str, ...]
    required: bool = True
    references: tuple[Reference, ...] = field(default=())

    @property
    def schema(self) -> DataFrameSchema:
        return _schema(self.model)

    @property
    def description(self) -> str:
        return (self.model.__doc__ or "").strip()

    def unique_keys(self) -> list[tuple[str, ...]]:
        """Every set of columns that must be unique: single-column fields, then `Config.unique`."""
        keys = [(name,) for name, col in self.schema.columns.items() if col.unique]
        unique = self.schema.unique
        if unique:
            groups = [unique] if all(isinstance(u, str) for u in unique) else unique
            keys.extend(tuple(g) for g in groups)
        return keys


@cache
def _schema(model: type[pa.DataFrameModel]) -> DataFrameSchema:
    return model.to_schema()


def _to_customers(column: str = "customer_id") -> tuple[Reference, ...]:
    return (Reference(column, "customers", "customer_id"),)


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "customers",
            Customers,
            ("customer_id", "name"),  # the name is masked wherever it is shown
            references=(Reference("rm_id", "rms", "rm_id"),),
        ),
        TableSpec("holdings", Holdings, ("customer_id", "product_id"), references=_to_customers()),
        TableSpec("balances", Balances, ("customer_id", "month"), references=_to_customers()),
        TableSpec("transactions", Transactions, ("customer_id", "ts"), references=_to_customers()),
        TableSpec("sessions", Sessions, ("customer_id", "ts"), references=_to_customers()),
        TableSpec(
            "complaints", Complaints, ("complaint_id", "customer_id"), references=_to_customers()
        ),
        TableSpec(
            "callbacks", Callbacks, ("callback_id", "customer_id"), references=_to_customers()
        ),
        TableSpec("rms", Rms, ("rm_id",)),
        TableSpec(
            "oracle",
            Oracle,
            ("customer_id", "as_of"),
            required=False,
            references=_to_customers(),
        ),
    )
}

REQUIRED_TABLES = tuple(name for name, spec in TABLES.items() if spec.required)

PII_COLUMNS = frozenset(
    name
    for spec in TABLES.values()
    for name, col in spec.schema.columns.items()
    if (col.metadata or {}).get("pii")
)
