"""The lake's layout and reading it: every table as a lazy Polars frame with the contract's schema.

Layout (shared/CONTRACT.md, section 1), plain Parquet that DuckDB, Spark or Polars read directly::

    LAKE/<table>/<run_id>.parquet      accepted rows of one ingest run (one file per table and run)
    LAKE/_quarantine/<run_id>.parquet  rejected rows: table, source_file, row_number, column, value, ...
    LAKE/_reports/<run_id>.json        the run's report; its rename into place commits the run
    LAKE/_staging/<run_id>/            where a run prepares its files (removed afterwards)
    LAKE/.lock                         held (flock) by the one ingest allowed to write at a time

A run id sorts by time (``20251231T235959123456Z``), so files read in name order are in run order.
Nothing of a run reaches ``LAKE/<table>/`` before its report is in ``_reports/``, so even plain
readers (DuckDB over ``LAKE/<table>/*.parquet``) never see an uncommitted row. A committed run whose
files a hard kill left in staging is read from there by this module (whole) and moved into place by
the next ingest (``recover``). ``_journal/`` is only read for lakes written by earlier versions.
Writing belongs to ``riskengine.lake.ingest``; everything else reads through this module.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl

from riskengine.core.contract import TABLES
from riskengine.core.errors import FatalInputError

QUARANTINE_DIR = "_quarantine"
REPORTS_DIR = "_reports"
JOURNAL_DIR = "_journal"
STAGING_DIR = "_staging"
LOCK_FILE = ".lock"

# Columns of LAKE/_quarantine/*.parquet: one entry per broken rule of a rejected source row.
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "table": pl.String(),
    "source_file": pl.String(),
    "row_number": pl.Int64(),
    "column": pl.String(),
    "value": pl.String(),
    "rule": pl.String(),
    "reason": pl.String(),
}


def _journals(lake: Path) -> list[Path]:
    folder = lake / JOURNAL_DIR
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def uncommitted_files(lake: Path) -> set[Path]:
    """Files moved into place by a run that has not committed (its report is missing)."""
    hidden: set[Path] = set()
    for journal in _journals(lake):
        if (lake / REPORTS_DIR / journal.name).exists():
            continue
        try:
            entry = json.loads(journal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a journal cut short was written before any file moved
        hidden.update(lake / rel for rel in entry.get("files", []))
    return hidden


def is_committed(lake: Path, run_id: str) -> bool:
    """Whether the run's report is in ``_reports/`` (the commit point)."""
    return (Path(lake) / REPORTS_DIR / f"{run_id}.json").is_file()


def _staged_committed(lake: Path, folder: str) -> dict[str, Path]:
    """Files of committed runs that a hard kill left in staging, by their path relative to the lake."""
    staging = lake / STAGING_DIR
    if not staging.is_dir():
        return {}
    found: dict[str, Path] = {}
    for run in staging.iterdir():
        if run.is_dir() and is_committed(lake, run.name) and (run / folder).is_dir():
            for p in (run / folder).rglob("*.parquet"):
                found[str(p.relative_to(run))] = p
    return found


def _committed_files(lake: Path, folder: str, pattern: str) -> list[Path]:
    """The committed Parquet files under ``LAKE/<folder>/`` (in place or still staged), in run order."""
    lake = Path(lake)
    place = lake / folder
    hidden = uncommitted_files(lake)
    in_place = {
        str(p.relative_to(lake)): p
        for p in (place.glob(pattern) if place.is_dir() else [])
        if not p.name.startswith((".", "_")) and p not in hidden
    }
    # Listed after the folder: a file moved in between is missed for this read, never read twice.
    staged = {rel: p for rel, p in _staged_committed(lake, folder).items() if rel not in in_place}
    return [p for _, p in sorted({**in_place, **staged}.items())]


def table_files(lake: Path, table: str) -> list[Path]:
    """The committed Parquet files of one table, in run order."""
    return _committed_files(lake, table, "**/*.parquet")


def quarantine_files(lake: Path) -> list[Path]:
    """The committed quarantine files, in run order."""
    return _committed_files(lake, QUARANTINE_DIR, "*.parquet")


def scan_quarantine(lake: Path) -> pl.LazyFrame:
    """Every committed quarantine entry of the lake (empty frame if there is none)."""
    files = quarantine_files(lake)
    if not files:
        return pl.LazyFrame(schema=QUARANTINE_SCHEMA)
    return pl.scan_parquet(files)


def empty_table(table: str) -> pl.LazyFrame:
    """An empty frame with the table's contract schema (for tables a source did not have)."""
    return pl.LazyFrame(schema=TABLES[table].schema)


def table_of(tables: Mapping[str, pl.LazyFrame], name: str) -> pl.LazyFrame:
    """``tables[name]``, or an empty frame with the contract schema when the lake has no such table."""
    frame = tables.get(name)
    return frame if frame is not None else empty_table(name)


def scan_table(lake: Path, table: str) -> pl.LazyFrame:
    """One table of the lake, lazily, with exactly the contract's columns and types."""
    if table not in TABLES:
        raise FatalInputError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    return scan_files(table_files(lake, table), table)


def scan_files(files: list[Path], table: str) -> pl.LazyFrame:
    """Some of one table's files (e.g. one bucket's), lazily, with exactly the contract's columns."""
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


def roll_back(lake: Path, journal: Path) -> None:
    """Undo a run of an earlier version that moved files into place under a journal but never
    committed: remove them and their journal."""
    try:
        entry = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        entry = {}
    for rel in entry.get("files", []):
        (lake / rel).unlink(missing_ok=True)
    for rel in sorted(entry.get("created_dirs", []), reverse=True):
        folder = lake / rel
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    journal.unlink(missing_ok=True)


def publish_staged(
    lake: Path, run_id: str, *, move: Callable[[Path, Path], None] = os.replace,
    after_each: Callable[[str], None] | None = None,
) -> None:
    """Move a committed run's staged files into place: tables in contract order (referenced tables
    first, so plain readers never meet an event whose enterprise is not there yet), quarantine last."""
    run = Path(lake) / STAGING_DIR / run_id
    order = {name: i for i, name in enumerate([*TABLES, QUARANTINE_DIR])}
    files = [p for p in run.rglob("*.parquet") if p.relative_to(run).parts[0] != REPORTS_DIR]
    files.sort(key=lambda p: (order.get(p.relative_to(run).parts[0], len(order)), str(p)))
    for src in files:
        rel = src.relative_to(run)
        (lake / rel).parent.mkdir(parents=True, exist_ok=True)
        move(src, lake / rel)
        if after_each is not None:
            after_each(f"moved {rel}")


def recover(lake: Path) -> list[str]:
    """Finish what interrupted runs left: move a committed run's staged files into place, remove an
    uncommitted run's staging (and roll back an earlier version's journalled runs).

    Call only while holding the lake's lock. Returns the run ids that were recovered either way.
    """
    lake = Path(lake)
    recovered: list[str] = []
    for journal in _journals(lake):
        if (lake / REPORTS_DIR / journal.name).exists():
            journal.unlink(missing_ok=True)  # committed; only the journal's removal was cut short
        else:
            roll_back(lake, journal)
            recovered.append(journal.stem)
    if (lake / JOURNAL_DIR).is_dir():
        for partial in (lake / JOURNAL_DIR).glob(".*.tmp"):  # a journal whose writing was cut short
            partial.unlink(missing_ok=True)
    if (lake / JOURNAL_DIR).is_dir() and not any((lake / JOURNAL_DIR).iterdir()):
        (lake / JOURNAL_DIR).rmdir()
    staging = lake / STAGING_DIR
    for run in sorted(staging.iterdir()) if staging.is_dir() else []:
        if run.is_dir() and is_committed(lake, run.name):
            publish_staged(lake, run.name)
        recovered.append(run.name)
    shutil.rmtree(staging, ignore_errors=True)
    return recovered


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace`` (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
