"""Execution engines: one set of Ibis feature definitions, run on DuckDB or on local Spark.

`connect(engine, workdir)` returns an Ibis backend; `load_tables(folder, backend)` gives the
bank's contract tables as lazy Ibis tables on that backend. Both engines run in UTC, so that a
timestamp literal such as an as-of date means the same instant everywhere.

The Spark session is created once per process (local[2], UI off, bound to 127.0.0.1, few
shuffle partitions, small driver memory) and reused by every later `connect("spark", ...)`.
Spark backends compile with `KeepwellSparkCompiler`, which closes two gaps of Ibis 12's PySpark
compiler (float literals typed DECIMAL by Spark, no bit aggregates); see `_spark_compiler`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import ibis
    from ibis.backends import BaseBackend

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[Engine, ...] = ("duckdb", "spark")

# Spark settings for this machine class (2 cores); a caller may override any of them.
SPARK_DEFAULTS: dict[str, str] = {
    "spark.master": "local[2]",
    "spark.app.name": "keepwell-features",
    "spark.driver.memory": "2g",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.eventLog.enabled": "false",
}

_spark_session: Any = None


class EngineError(RuntimeError):
    """An engine that cannot be started or a folder it cannot read."""


def connect(
    engine: str = "duckdb",
    workdir: Path | str | None = None,
    *,
    database: Path | str | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    spark_conf: Mapping[str, str] | None = None,
) -> BaseBackend:
    """An Ibis backend for `engine` ("duckdb" or "spark").

    DuckDB: in memory unless `database` names a file; spills to `workdir` when a query outgrows
    `memory_limit`. Spark: the process-wide local session (created on first use, with scratch
    space under `workdir`).
    """
    if engine == "duckdb":
        return _connect_duckdb(workdir, database, memory_limit, threads)
    if engine == "spark":
        return _connect_spark(workdir, spark_conf or {})
    raise EngineError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")


def _connect_duckdb(
    workdir: Path | str | None,
    database: Path | str | None,
    memory_limit: str | None,
    threads: int | None,
) -> BaseBackend:
    import ibis

    config: dict[str, Any] = {}
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    if workdir is not None:
        spill = Path(workdir) / "duckdb-spill"
        spill.mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(spill)
    target = ":memory:" if database is None else str(database)
    backend = ibis.duckdb.connect(target, **config)
    # After connecting: the TimeZone setting needs the (built-in) ICU extension loaded first.
    backend.raw_sql("SET TimeZone = 'UTC'")
    return backend


def spark_session(workdir: Path | str | None = None, conf: Mapping[str, str] | None = None) -> Any:
    """The process-wide local Spark session; settings apply only when it is first created."""
    global _spark_session
    if _spark_session is not None:
        return _spark_session
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is a pinned dependency
        raise EngineError("engine 'spark' needs pyspark installed") from exc
    # Bind every Spark socket to loopback; nothing listens on a public interface.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    scratch = Path(workdir) if workdir is not None else Path(tempfile.gettempdir())
    scratch = scratch / "spark"
    (scratch / "local").mkdir(parents=True, exist_ok=True)
    settings = dict(SPARK_DEFAULTS)
    settings["spark.local.dir"] = str(scratch / "local")
    settings["spark.sql.warehouse.dir"] = str(scratch / "warehouse")
    settings.update(conf or {})
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # Java missing or the JVM refused to start
        raise EngineError(f"could not start local Spark (is Java 17 installed?): {exc}") from exc
    session.sparkContext.setLogLevel("ERROR")
    _spark_session = session
    return session


def _connect_spark(workdir: Path | str | None, conf: Mapping[str, str]) -> BaseBackend:
    import ibis

    backend = ibis.pyspark.connect(spark_session(workdir, conf))
    backend.compiler = _spark_compiler()  # this backend only; Ibis itself is not patched
    return backend


_SPARK_COMPILER: Any = None


def _spark_compiler() -> Any:
    """Ibis 12's PySpark compiler with two gaps closed, so that one definition means the same on
    DuckDB and on Spark:

    * a float literal is written as a bare `1.0`, which Spark SQL parses as DECIMAL(2,1): then
      `sum(if(c, 1.0, 0.0)) / 30` is decimal division rounded to 6 places, not a double
      (same family as ibis-project/ibis#10890 and #11947). Here it is `CAST(1.0 AS DOUBLE)`.
    * the bit aggregates `BitOr`, `BitAnd`, `BitXor` have no compile rule ("Compilation rule
      for 'BitOr' operation is not defined"); Spark has `bit_or`, `bit_and`, `bit_xor`.
    """
    global _SPARK_COMPILER
    if _SPARK_COMPILER is not None:
        return _SPARK_COMPILER
    import math

    import ibis.expr.operations as ops
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    class KeepwellSparkCompiler(PySparkCompiler):
        __slots__ = ()
        SIMPLE_OPS = PySparkCompiler.SIMPLE_OPS | {
            ops.BitOr: "bit_or",
            ops.BitAnd: "bit_and",
            ops.BitXor: "bit_xor",
        }

        def visit_NonNullLiteral(self, op, *, value, dtype):  # type: ignore[no-untyped-def]
            result = super().visit_NonNullLiteral(op, value=value, dtype=dtype)
            if dtype.is_floating() and result is not None and math.isfinite(value):
                return self.cast(result, dtype)
            return result

    _SPARK_COMPILER = KeepwellSparkCompiler()
    return _SPARK_COMPILER


def engine_of(backend: BaseBackend) -> Engine:
    """ "duckdb" or "spark" for a backend made by `connect`."""
    name = getattr(backend, "name", "")
    if name == "duckdb":
        return "duckdb"
    if name == "pyspark":
        return "spark"
    raise EngineError(f"unsupported Ibis backend {name!r}: use connect('duckdb'|'spark')")


def table_files(folder: Path | str) -> dict[str, Path]:
    """The contract tables present in `folder`: `<table>.parquet` (file or folder) or `.csv`."""
    from keepwell.contract import TABLES

    folder = Path(folder)
    if not folder.is_dir():
        raise EngineError(f"data folder not found: {folder}")
    found: dict[str, Path] = {}
    for name in TABLES:
        parquet, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
        if parquet.exists() and csv.exists():
            raise EngineError(
                f"table {name!r} is in {folder} twice ({parquet.name} and {csv.name}); keep one"
            )
        if parquet.exists():
            found[name] = parquet
        elif csv.exists():
            found[name] = csv
    return found


def load_tables(
    folder: Path | str, backend: BaseBackend, *, scratch: Path | str | None = None
) -> dict[str, ibis.Table]:
    """The contract tables in `folder` as lazy Ibis tables on `backend` (not yet validated).

    DuckDB goes through `keepwell.contract.open_tables` (Parquet read lazily, CSV typed by the
    contract). On Spark, Parquet is read with the backend's `read_parquet`; a CSV table is typed
    once through DuckDB by the same contract code and handed to Spark as Parquet written under
    `scratch` (default: a new temporary folder), so that both engines see identical values.
    """
    from keepwell.contract import open_tables

    if engine_of(backend) == "duckdb":
        return open_tables(folder, con=backend)
    files = table_files(folder)
    if not files:
        raise EngineError(f"no contract tables (<table>.parquet or <table>.csv) in {folder}")
    csv_names = [name for name, path in files.items() if path.suffix == ".csv"]
    typed_csv = _csv_as_parquet(folder, csv_names, scratch) if csv_names else {}
    tables: dict[str, ibis.Table] = {}
    for name, path in files.items():
        source = typed_csv.get(name, path)
        # a fresh view name per read (Ibis generates one): reusing a name would silently
        # change what tables opened earlier on this session read
        tables[name] = backend.read_parquet(str(source))
    return tables


def _csv_as_parquet(
    folder: Path | str, names: list[str], scratch: Path | str | None
) -> dict[str, Path]:
    """Type CSV tables by the contract (through DuckDB) and store them as Parquet for Spark."""
    from keepwell.contract import open_tables

    if scratch is None:
        target_dir = Path(tempfile.mkdtemp(prefix="keepwell-csv-"))
        # Spark reads lazily, so the files must outlive this call: removed when Python exits.
        atexit.register(shutil.rmtree, target_dir, ignore_errors=True)
    else:
        target_dir = Path(scratch) / "csv-as-parquet"
        target_dir.mkdir(parents=True, exist_ok=True)
    duck = _connect_duckdb(None, None, None, None)
    typed = open_tables(folder, con=duck)
    out: dict[str, Path] = {}
    for name in names:
        target = target_dir / f"{name}.parquet"
        duck.to_parquet(typed[name], target)
        out[name] = target
    return out
