"""Reading the lake: every table as a lazy Polars frame with the contract's schema.

Layout (shared/CONTRACT.md): ``LAKE/<table>/`` holds a table's accepted rows as Parquet files,
``LAKE/_quarantine/`` rejected rows, ``LAKE/_reports/`` one JSON report per ingest run.
Writing belongs to ``riskengine.ingest``; everything else reads through this module.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from riskengine.contract import TABLES
from riskengine.errors import FatalInputError

QUARANTINE_DIR = "_quarantine"
REPORTS_DIR = "_reports"


def table_files(lake: Path, table: str) -> list[Path]:
    """The committed Parquet files of one table, in a stable order."""
    folder = Path(lake) / table
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith((".", "_")))


def empty_table(table: str) -> pl.LazyFrame:
    """An empty frame with the table's contract schema (for tables a source did not have)."""
    return pl.LazyFrame(schema=TABLES[table].schema)


def scan_table(lake: Path, table: str) -> pl.LazyFrame:
    """One table of the lake, lazily, with exactly the contract's columns and types."""
    if table not in TABLES:
        raise FatalInputError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    files = table_files(lake, table)
    if not files:
        return empty_table(table)
    schema = TABLES[table].schema
    frame = pl.scan_parquet(files, hive_partitioning=False, missing_columns="insert",
                            extra_columns="ignore")
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


def load_tables(lake: Path) -> dict[str, pl.LazyFrame]:
    """Every contract table of the lake (empty frames for the absent ones)."""
    lake = Path(lake)
    if not (lake / "enterprises").is_dir():
        raise FatalInputError(f"{lake}: not a lake (no enterprises/ table); run `riskengine ingest` first")
    return {name: scan_table(lake, name) for name in TABLES}
