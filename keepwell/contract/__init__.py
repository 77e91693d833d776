"""The data contract: the bank's tables, their columns, types and rules (DESIGN.md section 2).

Declared once with pandera's Ibis models (`keepwell.contract.schemas`), checked with Ibis
aggregates on DuckDB or Spark without loading a table into pandas.

    report = validate_folder("data/bank")        # ValidationReport: .ok, .violations, .render()
    tables = require_valid("data/bank")          # dict[str, ibis.Table], or ContractError
"""

from keepwell.contract.reading import open_tables
from keepwell.contract.report import ContractError, ValidationReport, Violation, mask_value
from keepwell.contract.schemas import PII_COLUMNS, REQUIRED_TABLES, TABLES, TableSpec
from keepwell.contract.validation import require_valid, validate_folder, validate_tables

__all__ = [
    "PII_COLUMNS",
    "REQUIRED_TABLES",
    "TABLES",
    "ContractError",
    "TableSpec",
    "ValidationReport",
    "Violation",
    "mask_value",
    "open_tables",
    "require_valid",
    "validate_folder",
    "validate_tables",
]
