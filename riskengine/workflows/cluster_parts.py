"""The parts of a cluster run (``riskengine.workflows.cluster``): what a task needs to find its part
(``Job``), how many parts a lake gives, one part's rows of every table, the parts' files written
atomically, and the client's merge of the parts into one output in the single process's row order, a
bounded number of rows at a time."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from features.asof import AS_OF, KEY
from riskengine.core import exports
from riskengine.core.contract import TABLES
from riskengine.core.errors import UsageError
from riskengine.core.files import atomic_write
from riskengine.lake import buckets
from riskengine.lake.layout import scan_files, scan_table, table_files

ROWS_PER_PART = 250_000
"""Without ``--partitions``, a lake in plain files is split so that a part holds about this many
enterprises (and at least two parts per worker)."""

ROW = "_erow"


# --- one job ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What every task needs to find its part: the lake, the parts, the dates and a work folder."""

    lake: Path
    parts: int
    bucketed: bool
    dates: tuple[date, ...]
    work: Path
    half_life_days: float = 180.0
    crash_once: Path | None = None  # fault injection for tests: the first try of part 0 kills its worker


@dataclass
class ClusterReport:
    """What a cluster run did: parts, rows written, peak memory per worker process (bytes)."""

    parts: int
    rows: int
    peak_rss_per_worker: dict[str, int] = field(default_factory=dict)
    dashboard: str | None = None
    grade_counts: dict[str, int] = field(default_factory=dict)
    bucketed: bool = True

    @property
    def note(self) -> str | None:
        """What to tell the user about the lake's layout (None for a bucketed lake)."""
        if self.bucketed:
            return None
        return (f"note: the lake is in plain files, so each of the {self.parts} parts read every table "
                f"whole, a batch at a time (bounded memory, {self.parts} times the reading); a lake "
                f"ingested with `riskengine ingest --buckets {self.parts}` lets each part read only its "
                "own files")


def plan_parts(lake: Path, partitions: int | None, workers: int) -> tuple[int, bool]:
    """(parts, bucketed): a bucketed lake's own bucket count, else ``partitions`` or a size rule."""
    n_buckets = buckets.lake_buckets(lake)
    if n_buckets is not None:
        if partitions is not None and partitions != n_buckets:
            raise UsageError(f"{lake} is laid out in {n_buckets} buckets; --partitions must be "
                             f"{n_buckets} or left out; got {partitions}")
        return n_buckets, True
    if partitions is not None:
        return buckets.check_buckets(partitions), False
    n = scan_table(lake, "enterprises").select(pl.len()).collect().item()
    return max(2 * max(workers, 1), math.ceil(n / ROWS_PER_PART)), False


WHOLE = ("record_voids",)
"""Tables with ``enterprise_id`` that every part reads whole: a void drops the record it names by the
record's id alone (``features.build``), whichever enterprise the void itself names, and the run of
as_of dates a part assembles together depends on every void (``asof.void_segments``). Upheld
objections are few."""


def part_tables(job: Job, part: int) -> dict[str, pl.LazyFrame]:
    """Every contract table restricted to one part's enterprises (tables without ``enterprise_id``,
    such as credit repairs, whole: they are small and join through a part's own records; and the
    record voids whole, ``WHOLE``). A bucketed lake gives the part's bucket files; a lake in plain
    files is read a batch at a time, keeping the part's rows (``read_part``)."""
    out: dict[str, pl.LazyFrame] = {}
    folder = buckets.folder_name(part)
    for name, spec in TABLES.items():
        if KEY not in spec.schema or name in WHOLE:
            out[name] = scan_table(job.lake, name)
        elif job.bucketed:
            out[name] = scan_files([f for f in table_files(job.lake, name) if f.parent.name == folder], name)
        else:
            out[name] = read_part(table_files(job.lake, name), name, job.parts, part).lazy()
    return out


READ_ROWS = 131_072
"""Rows a task reads at a time from a lake in plain files (``part_batches``)."""


def part_batches(files: Sequence[Path], parts: int, part: int, columns: Sequence[str] | None = None, *,
                  numbered: bool = False) -> Iterator[pl.DataFrame]:
    """One part's rows of Parquet ``files`` (``columns`` that a file has), in order, ``READ_ROWS`` read
    at a time; ``numbered`` adds each row's number among all the files' rows (``ROW``).

    A task so holds its part and one batch, not the table: a lazy filter by the hash (a Python
    function) is not pushed into the Parquet reader, so the whole table would be read and hashed by
    every task. The rows are kept in Arrow (a copy of exactly those rows): a Polars filter would keep
    every batch's whole string buffers alive behind the kept rows' views.
    """

    offset = 0
    for path in files:
        handle = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering would read the whole file
        cols = None if columns is None else [c for c in columns if c in handle.schema_arrow.names]
        for batch in handle.iter_batches(batch_size=READ_ROWS, columns=cols):
            mask = buckets.bucket_of(pl.Series(batch.column(KEY)), parts) == part
            if numbered:
                numbers = pa.array(np.arange(offset, offset + batch.num_rows, dtype=np.uint32))
                batch = batch.append_column(ROW, numbers)
            offset += batch.num_rows
            yield pl.DataFrame(pl.from_arrow(batch.filter(mask.to_arrow())))


def read_part(files: Sequence[Path], table: str, parts: int, part: int) -> pl.DataFrame:
    """One part's rows of a table in plain files, with the contract's columns (as ``scan_files``)."""
    schema = TABLES[table].schema
    kept = [_conform(rows, schema) for rows in part_batches(files, parts, part)]
    return pl.concat(kept) if kept else pl.DataFrame(schema=schema)


def _conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return frame.select([(pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
                         for c, t in schema.items()])


def row_numbers(job: Job, part: int) -> pl.DataFrame:
    """(enterprise_id, _erow): the part's enterprises with their row in the whole enterprises table."""
    files = table_files(job.lake, "enterprises")
    out = [rows.select(pl.col(KEY).cast(pl.String), ROW)
           for rows in part_batches(files, job.parts, part, [KEY], numbered=True)]
    return pl.concat(out) if out else pl.DataFrame(schema={KEY: pl.String, ROW: pl.UInt32})


def write_frame(frame: pl.DataFrame, path: Path) -> None:
    atomic_write(path, frame.write_parquet)



MERGE_ROWS = 262_144
"""Rows the client buffers at most while it merges the parts of a lake in plain files (spread over the
parts): its memory for the output does not grow with the city."""


def ordered_chunks(job: Job) -> Iterator[pl.DataFrame]:
    """The parts' output rows in the single process's order, a chunk at a time, without ``ROW``.

    A bucketed lake's parts are in that order already, date by date: part after part for each date.
    A lake in plain files interleaves its parts' rows: they are merged by ``ROW`` (``merged``).
    Either way the client holds a bounded number of rows, whatever the city's size.
    """
    files = sorted(job.work.glob("out-*.parquet"))
    if not job.bucketed:
        for chunk in merged(files, ROW, max(64, MERGE_ROWS // max(len(files), 1))):
            yield chunk.drop(ROW)
        return
    for day in job.dates:
        for path in files:
            frame = pl.scan_parquet(path)
            if len(job.dates) > 1:
                frame = frame.filter(pl.col(AS_OF) == day)
            chunk = frame.collect()
            if chunk.height:
                yield chunk


def merged(files: Sequence[Path], key: str, batch_rows: int) -> Iterator[pl.DataFrame]:
    """The rows of ``files`` (each sorted by the unique Int64 ``key``) in order of ``key``, merged a
    batch at a time: each step emits every buffered row up to the smallest last key of the buffers,
    which empties at least one buffer; all later rows have greater keys."""

    readers = [pq.ParquetFile(f).iter_batches(batch_size=batch_rows) for f in files]

    def pull(i: int) -> pl.DataFrame | None:
        for batch in readers[i]:
            if batch.num_rows:
                return pl.DataFrame(pl.from_arrow(batch))
        return None

    buffers = [pull(i) for i in range(len(readers))]
    while True:
        live = [i for i, b in enumerate(buffers) if b is not None]
        if not live:
            return
        bound = min(buffers[i][key][-1] for i in live)  # type: ignore[index]
        taken = []
        for i in live:
            buffer = buffers[i]
            assert buffer is not None
            n = buffer[key].search_sorted(bound, side="right")
            taken.append(buffer.head(n))
            buffers[i] = buffer.slice(n) if n < buffer.height else pull(i)
        yield pl.concat(taken).sort(key)


def write_output(job: Job, out: Path) -> None:
    """The parts' files as one output file (Parquet, or CSV for features), in the single process's row
    order (``ordered_chunks``), written atomically a chunk at a time."""

    csv = out.suffix.lower() == ".csv"

    def write(tmp: Path) -> None:
        if csv:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                for i, chunk in enumerate(ordered_chunks(job)):
                    exports.csv_safe(chunk).write_csv(f, include_header=i == 0, quote_style="non_numeric")
            return
        writer: pq.ParquetWriter | None = None
        try:
            for chunk in ordered_chunks(job):
                table = chunk.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()

    atomic_write(out, write)
