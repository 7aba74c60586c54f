"""Ingest a source folder into the validated lake (``riskengine ingest SOURCE --lake LAKE``).

Three phases, so that bad input never harms the lake:

1. *Look* (nothing written; ``riskengine.lake.source``): the source is a folder, ``enterprises`` is
   there, every present table has its required columns. Anything missing is a ``FatalInputError``
   (exit 2) naming it.
2. *Stage* (under the lake's lock): read each table as text, validate it column-wise
   (``riskengine.lake.validate``), drop exact duplicates, compare ids with the lake (same content →
   duplicate, different content → ``conflict``), and write accepted rows, the quarantine and the
   report into ``LAKE/_staging/<run_id>/``.
3. *Commit*: rename the report into ``LAKE/_reports/`` — the commit point — then rename the staged
   files into place. Any error, Ctrl-C or hard kill before the commit point leaves the lake as it
   was (the next ingest removes the staging folder); after it, the run is committed: the lake's
   readers take files not yet moved from staging, and the next ingest finishes moving them
   (``lake.recover``). Plain readers of ``LAKE/<table>/*.parquet`` never see an uncommitted row.

For every table: rows read = accepted + quarantined (distinct rows) + duplicates.
Extra source columns are ignored (named in the report); the lake holds the contract's columns only.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from riskengine.core import exports
from riskengine.core.contract import ID_SCHEMES, TABLE_ORDER, TABLES, Table
from riskengine.core.errors import BusyError, FatalInputError, RiskEngineError, UsageError
from riskengine.core.files import atomic_write
from riskengine.core.progress import progress
from riskengine.lake import buckets
from riskengine.lake import layout as lakes
from riskengine.lake.source import (
    SourceFile,
    find_sources,
    read_source,
)
from riskengine.lake.validate import ROW, RULES, empty_quarantine, validate_table


@dataclass
class IngestReport:
    """What one ingest run did: per-table counts, quarantine summary, where things were written."""

    run_id: str
    source: str
    lake: str
    ingest_day: date
    id_scheme: str
    ingested_at: str
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    absent_tables: list[str] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    top_reasons: list[dict[str, Any]] = field(default_factory=list)
    quarantine_file: str | None = None
    recovered_runs: list[str] = field(default_factory=list)

    @property
    def quarantined(self) -> int:
        """Rows quarantined over all tables."""
        return sum(t["quarantined"] for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "source": self.source,
            "lake": self.lake,
            "ingest_day": self.ingest_day.isoformat(),
            "ingested_at": self.ingested_at,
            "id_scheme": self.id_scheme,
            "tables": self.tables,
            "absent_tables": self.absent_tables,
            "ignored_columns": self.ignored_columns,
            "quarantine": {
                "file": self.quarantine_file,
                "rows": self.quarantined,
                "top_reasons": self.top_reasons,
            },
            "recovered_runs": self.recovered_runs,
            "row_number": "1-based data row of the source file; the CSV header row is not counted",
        }


# --- phase 2: validate and compare with the lake ----------------------------------------------------


def _content_columns(table: Table) -> list[str]:
    return table.column_names


def _within_source(table: Table, good: pl.DataFrame) -> tuple[pl.DataFrame, int, pl.DataFrame]:
    """Drop exact duplicate rows (keep the first); quarantine ids repeated with different content.

    Returns (rows with distinct ids, number of exact duplicates, quarantine entries). Only rows whose
    id occurs more than once are compared, so a source with unique ids costs one hash pass.
    """
    key = table.key
    repeated_id = good.get_column(key).is_duplicated()
    if not repeated_id.any():
        return good, 0, empty_quarantine()
    multi = good.filter(repeated_id)
    distinct = multi.unique(subset=_content_columns(table), keep="first", maintain_order=True)
    duplicates = multi.height - distinct.height
    clashing = distinct.get_column(key).is_duplicated()
    kept = pl.concat([good.filter(~repeated_id), distinct.filter(~clashing)]).sort(ROW)
    clash = distinct.filter(clashing)
    if clash.height == 0:
        return kept, duplicates, empty_quarantine()
    rows_of = clash.group_by(key).agg(pl.col(ROW).sort().alias("__rows"), pl.len().alias("__n"))
    clash = clash.join(rows_of, on=key, how="left", maintain_order="left")
    rows = pl.col("__rows").list.head(10).cast(pl.List(pl.String)).list.join(", ")
    quarantine = clash.select(
        pl.col(ROW).cast(pl.Int64).alias("row_number"),
        pl.lit(key).alias("column"),
        pl.col(key).alias("value"),
        pl.lit("duplicate_id").alias("rule"),
        pl.format(f"{key} appears on {{}} rows of this source with different content (rows {{}})",
                  pl.col("__n"), rows).alias("reason"),
    )
    return kept, duplicates, quarantine


def _against_lake(
    table: Table, rows: pl.DataFrame, lake: Path
) -> tuple[pl.DataFrame, int, pl.DataFrame]:
    """Split rows by what the lake already holds under their id.

    Same content → exact duplicate (re-ingest changes nothing); different content → ``conflict``
    (never overwritten). Returns (new rows, number of duplicates, quarantine entries).
    """
    key = table.key
    existing = (
        lakes.scan_table(lake, table.name)
        .join(rows.lazy().select(key), on=key, how="semi")
        .collect()
    )
    if existing.height == 0:
        return rows, 0, empty_quarantine()
    others = [c for c in _content_columns(table) if c != key]
    lake_side = existing.rename({c: f"{c}__lake" for c in others}).with_columns(
        pl.lit(True).alias("__in_lake")
    )
    joined = rows.join(lake_side, on=key, how="left", maintain_order="left")
    in_lake = pl.col("__in_lake").fill_null(False)
    differs = {c: ~pl.col(c).eq_missing(pl.col(f"{c}__lake")) for c in others}
    any_diff = pl.any_horizontal(list(differs.values())) if differs else pl.lit(False)
    joined = joined.with_columns(in_lake.alias("__in_lake"), any_diff.alias("__diff"))
    duplicates = joined.filter(pl.col("__in_lake") & ~pl.col("__diff")).height
    conflicts = joined.filter(pl.col("__in_lake") & pl.col("__diff"))
    parts = [
        conflicts.filter(expr).select(
            pl.col(ROW).cast(pl.Int64).alias("row_number"),
            pl.lit(c).alias("column"),
            pl.col(c).cast(pl.String).alias("value"),
            pl.lit("conflict").alias("rule"),
            pl.format(
                f"{key} {{}} is already in the lake with {c} = {{}}; not overwritten",
                pl.col(key), pl.col(f"{c}__lake").cast(pl.String).fill_null("(empty)"),
            ).alias("reason"),
        )
        for c, expr in differs.items()
    ]
    quarantine = pl.concat(parts) if parts else empty_quarantine()
    new = joined.filter(~pl.col("__in_lake")).select(rows.columns)
    return new, duplicates, quarantine


def _referenced() -> set[tuple[str, str]]:
    return {c.references for t in TABLES.values() for c in t.columns if c.references}


def _known_ids(lake: Path, table: str, column: str, accepted: pl.DataFrame | None) -> pl.Series:
    ids = lakes.scan_table(lake, table).select(column).collect().to_series()
    if accepted is not None and accepted.height:
        ids = pl.concat([ids, accepted.get_column(column)])
    return ids.unique()


@dataclass
class _Staged:
    tables: dict[str, dict[str, int]]
    quarantine: pl.DataFrame
    files: list[tuple[Path, str]]  # (staged file, path relative to the lake)


def _stage(
    sources: Mapping[str, SourceFile],
    lake: Path,
    staging: Path,
    run_id: str,
    *,
    ingest_day: date,
    id_scheme: str,
    n_buckets: int | None = None,
    keep_bulk_days: bool = False,
) -> _Staged:
    """Validate the tables in contract order (referenced tables first) and write their files to staging."""
    refs = _referenced()
    known: dict[tuple[str, str], pl.Series] = {}
    rejected: dict[tuple[str, str], pl.Series] = {}
    counts: dict[str, dict[str, int]] = {}
    quarantines: list[pl.DataFrame] = []
    files: list[tuple[Path, str]] = []
    with progress("ingest", total=len(sources)) as advance:
        for name in TABLE_ORDER:
            if name not in sources:
                for target in refs:
                    if target[0] == name:
                        known[target] = _known_ids(lake, name, target[1], None)
                continue
            src, table = sources[name], TABLES[name]
            advance(0, description=f"ingest {name}")
            frame = read_source(src)
            checked = validate_table(table, frame, ingest_day=ingest_day, id_scheme=id_scheme,
                                     known=known, rejected=rejected, keep_bulk_days=keep_bulk_days)
            rows, dup_source, q_ids = _within_source(table, checked.good)
            new, dup_lake, q_conflicts = _against_lake(table, rows, lake)
            quarantine = pl.concat([checked.quarantine, q_ids, q_conflicts]).with_columns(
                pl.lit(run_id).alias("run_id"),
                pl.lit(name).alias("table"),
                pl.lit(str(src.path)).alias("source_file"),
            )
            counts[name] = {
                "read": frame.height,
                "accepted": new.height,
                "quarantined": quarantine.get_column("row_number").n_unique(),
                "duplicates": dup_source + dup_lake,
            }
            c = counts[name]
            if c["read"] != c["accepted"] + c["quarantined"] + c["duplicates"]:  # pragma: no cover
                raise RiskEngineError(f"ingest bug: rows of {name} not conserved: {c}")
            accepted = new.drop(ROW).select([pl.col(k).cast(v) for k, v in table.schema.items()])
            for rel, rows_out in _laid_out(name, run_id, accepted, n_buckets):
                staged = staging / rel
                staged.parent.mkdir(parents=True, exist_ok=True)
                rows_out.write_parquet(staged, compression="zstd", statistics=True)
                files.append((staged, rel))
            quarantines.append(quarantine.select(list(lakes.QUARANTINE_SCHEMA)))
            for target in refs:
                if target[0] == name:
                    known[target] = _known_ids(lake, name, target[1], accepted)
                    rejected[target] = (
                        frame.join(quarantine.select(pl.col("row_number").alias(ROW).cast(frame.schema[ROW])),
                                   on=ROW, how="semi")
                        .get_column(target[1]).str.strip_chars().drop_nulls().unique()
                    )
            advance(1)
    quarantine = (
        pl.concat(quarantines).sort(["table", "row_number"], maintain_order=True)
        if quarantines else pl.DataFrame(schema=lakes.QUARANTINE_SCHEMA)
    )
    return _Staged(tables=counts, quarantine=quarantine, files=files)


def _laid_out(name: str, run_id: str, accepted: pl.DataFrame, n_buckets: int | None
              ) -> list[tuple[str, pl.DataFrame]]:
    """Where a table's accepted rows go: ``<table>/<run>.parquet``, or in a bucketed lake one file per
    bucket of ``enterprise_id`` (``<table>/bucket=NNNN/<run>.parquet``)."""
    if accepted.height == 0:
        return []
    if n_buckets is None or "enterprise_id" not in accepted.columns:
        return [(f"{name}/{run_id}.parquet", accepted)]
    return [(f"{name}/{buckets.folder_name(b)}/{run_id}.parquet", part)
            for b, part in buckets.split(accepted, n_buckets)]


def _lake_buckets(lake: Path, asked: int | None) -> int | None:
    """The lake's bucket count: its layout file's, or ``asked`` for a new lake (written here)."""
    have = buckets.lake_buckets(lake)
    if asked is None:
        return have
    buckets.check_buckets(asked)
    if have is None:
        if lakes.table_files(lake, "enterprises"):
            raise UsageError(f"{lake} already holds tables in plain files; --buckets lays out a new lake "
                             "(ingest the sources into a new folder)")
        lakes.atomic_write_bytes(lake / buckets.LAYOUT_FILE, buckets.layout_bytes(asked))
        return asked
    if have != asked:
        raise UsageError(f"{lake} is laid out in {have} buckets; --buckets must be {have} or left out; "
                         f"got {asked}")
    return have


def summarise_reasons(quarantine: pl.DataFrame, limit: int | None = None) -> list[dict[str, Any]]:
    """Quarantine entries grouped by table, column and rule, most frequent first, with an example."""
    if quarantine.height == 0:
        return []
    grouped = (
        quarantine.group_by("table", "column", "rule", maintain_order=True)
        .agg(
            pl.col("row_number").n_unique().alias("rows"),
            pl.col("value").first().alias("example_value"),
            pl.col("reason").first().alias("example_reason"),
            pl.col("row_number").first().alias("example_row"),
        )
        .sort(["rows", "table", "column", "rule"], descending=[True, False, False, False])
    )
    if limit is not None:
        grouped = grouped.head(limit)
    out = grouped.to_dicts()
    for item in out:
        zh, en = RULES.get(item["rule"], (item["rule"], item["rule"]))
        item["label_zh"], item["label_en"] = zh, en
    return out


# --- phase 3: commit --------------------------------------------------------------------------------


def _new_run_id(lake: Path) -> str:
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    while (lake / lakes.REPORTS_DIR / f"{run_id}.json").exists():  # clock went backwards
        run_id += "_"
    return run_id


@contextmanager
def _locked(lake: Path) -> Iterator[None]:
    """Hold the lake's write lock: one ingest at a time (released by the OS if the process dies).

    A refused run raises ``BusyError`` before it touches anything. After locking, the lock file must
    still be the one at ``LAKE/.lock``: a run that failed on a new lake removes that file, and a lock
    taken on the removed file would let two runs write at once.
    """
    import fcntl  # noqa: PLC0415 - POSIX only

    path = lake / lakes.LOCK_FILE
    fh = open(path, "a+b")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fh.fileno()).st_ino != os.stat(path).st_ino:
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError) as exc:
            raise BusyError(f"{lake}: another ingest is writing to this lake; try again later") from exc
        yield
    finally:
        fh.close()


def _move(src: Path, dst: Path) -> None:
    """Rename one staged file into place (a separate function so tests can inject a failure)."""
    os.replace(src, dst)


def _commit_step(step: str) -> None:
    """Called after each step of a commit; does nothing (the kill tests stop the process here)."""


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(lake: Path, run_id: str, staged: list[tuple[Path, str]], report: bytes) -> None:
    """Publish a staged run: the report's rename into ``_reports/`` is the commit point.

    Before it, every file is still in ``_staging/<run_id>/`` where no reader looks, so a kill
    leaves the lake as it was. After it, the files are renamed into place (referenced tables first);
    a kill in between leaves a committed run that the lake's readers take from staging and the next
    ingest finishes moving (``lake.recover``). Plain readers of ``LAKE/<table>/*.parquet`` therefore
    never see a row of an uncommitted run.
    """
    for src, _ in staged:
        _fsync(src)  # the data is on disk before the report says it is committed
    staged_report = lake / lakes.STAGING_DIR / run_id / lakes.REPORTS_DIR / f"{run_id}.json"
    staged_report.parent.mkdir(parents=True, exist_ok=True)
    lakes.atomic_write_bytes(staged_report, report)
    (lake / lakes.REPORTS_DIR).mkdir(exist_ok=True)
    _commit_step("staged")
    _move(staged_report, lake / lakes.REPORTS_DIR / f"{run_id}.json")
    _fsync(lake / lakes.REPORTS_DIR)
    _commit_step("committed")
    lakes.publish_staged(lake, run_id, move=_move, after_each=_commit_step)
    _commit_step("published")


def ingest(
    source: Path,
    lake: Path,
    id_scheme: str = "uscc",
    *,
    ingest_day: date | None = None,
    n_buckets: int | None = None,
    keep_bulk_days: bool = False,
) -> IngestReport:
    """Validate ``source`` and append its good rows to ``lake``; see the module docstring.

    ``n_buckets`` lays a new lake out in that many buckets of ``enterprise_id`` (CONTRACT §8; later
    runs keep the lake's layout without being told). ``keep_bulk_days`` accepts inspections on
    bulk-entry days, which are otherwise quarantined (rule ``bulk_day``, CONTRACT §1).

    ``ingest_day`` (default today) is the day no date may lie after. Raises ``FatalInputError`` for a
    source that cannot be ingested at all; then nothing is written.
    """
    if id_scheme not in ID_SCHEMES:
        raise UsageError(f"--id-scheme must be one of {', '.join(ID_SCHEMES)}; got {id_scheme!r}")
    source, lake = Path(source), Path(lake)
    day = ingest_day or date.today()
    sources = find_sources(source)
    if lake.exists() and not lake.is_dir():
        raise FatalInputError(f"{lake}: the lake must be a folder")
    new_lake = not lake.exists()
    lake.mkdir(parents=True, exist_ok=True)
    # Only the run holding the lock cleans up, and only its own staging folder: a refused run
    # (BusyError from _locked) leaves the running one's files and lock alone.
    with _locked(lake):
        run_id = ""
        try:
            recovered = lakes.recover(lake)
            laid_out = _lake_buckets(lake, n_buckets)
            run_id = _new_run_id(lake)
            staging = lake / lakes.STAGING_DIR / run_id
            staging.mkdir(parents=True)
            staged = _stage(sources, lake, staging, run_id, ingest_day=day, id_scheme=id_scheme,
                            n_buckets=laid_out, keep_bulk_days=keep_bulk_days)
            q_rel = f"{lakes.QUARANTINE_DIR}/{run_id}.parquet"
            q_file = staging / q_rel
            q_file.parent.mkdir(parents=True, exist_ok=True)
            staged.quarantine.write_parquet(q_file, compression="zstd")
            report = IngestReport(
                run_id=run_id, source=str(source), lake=str(lake), ingest_day=day, id_scheme=id_scheme,
                ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
                tables=staged.tables,
                absent_tables=[t for t in TABLE_ORDER if t not in sources],
                ignored_columns={t: list(s.ignored) for t, s in sources.items() if s.ignored},
                top_reasons=summarise_reasons(staged.quarantine),
                quarantine_file=q_rel,
                recovered_runs=recovered,
            )
            payload = json.dumps(report.to_dict(), ensure_ascii=False, indent=2).encode("utf-8")
            _commit(lake, run_id, [*staged.files, (q_file, q_rel)], payload)
            _clean_staging(lake, run_id)
        except BaseException:
            if run_id and lakes.is_committed(lake, run_id):
                raise  # committed: readers see it whole, and the next ingest finishes moving its files
            if run_id:
                _clean_staging(lake, run_id)
            if new_lake:
                (lake / lakes.LOCK_FILE).unlink(missing_ok=True)
                (lake / buckets.LAYOUT_FILE).unlink(missing_ok=True)
                _remove_if_empty(lake / lakes.STAGING_DIR)
                _remove_if_empty(lake)
            raise
    return report


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _clean_staging(lake: Path, run_id: str) -> None:
    """Remove one run's staging folder (never another run's), and ``_staging`` once it is empty."""
    shutil.rmtree(lake / lakes.STAGING_DIR / run_id, ignore_errors=True)
    _remove_if_empty(lake / lakes.STAGING_DIR)


# Headers of the officer-facing quarantine list (Chinese first: officers read it).
QUARANTINE_HEADERS = {
    "table": "表 table", "source_file": "源文件 source file", "row_number": "行号 row",
    "column": "列 column", "value": "值 value", "rule_zh": "问题 problem", "rule": "规则 rule",
    "reason": "说明 reason",
}


def export_quarantine(lake: Path, run_id: str, out: Path) -> int:
    """Write one run's quarantine as a list for officers (``.xlsx`` or ``.csv``); returns entries.

    Written to a temporary file first and renamed, so a failed export never leaves half a file.
    """
    out = Path(out)
    if out.suffix.lower() not in (".xlsx", ".csv"):
        raise UsageError(f"quarantine list must end .xlsx or .csv; got {out}")
    entries = (
        lakes.scan_quarantine(lake).filter(pl.col("run_id") == run_id).collect()
        .with_columns(pl.col("rule").replace_strict({k: v[0] for k, v in RULES.items()},
                                                    default=pl.col("rule")).alias("rule_zh"))
        .select(list(QUARANTINE_HEADERS)).rename(QUARANTINE_HEADERS)
    )

    def write(tmp: Path) -> None:
        if out.suffix.lower() == ".csv":
            exports.write_csv(entries, tmp)  # the BOM makes Excel read UTF-8 Chinese correctly
        else:
            exports.write_xlsx(entries, tmp, worksheet="隔离 quarantine", autofit=True, freeze_panes="A2")

    atomic_write(out, write)
    return entries.height


def read_report(lake: Path, run_id: str | None = None) -> dict[str, Any]:
    """The JSON report of one run (the latest by default)."""
    folder = Path(lake) / lakes.REPORTS_DIR
    reports = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if run_id is not None:
        reports = [p for p in reports if p.stem == run_id]
    if not reports:
        raise FatalInputError(f"{lake}: no ingest report{'' if run_id is None else f' for run {run_id}'}")
    return json.loads(reports[-1].read_text(encoding="utf-8"))
