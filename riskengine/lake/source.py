"""Phase 1 of an ingest: find a source folder's tables and read them as text, row numbers kept.

Nothing is written here. A missing folder, ``enterprises`` table or required column is a
``FatalInputError`` naming it; CSV records that span lines or grow past a limit are cut off and
quarantined by the validation, never guessed at.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from riskengine.core.contract import TABLE_ORDER, TABLES
from riskengine.core.errors import FatalInputError
from riskengine.lake.validate import EXTRA, ROW

SOURCE_FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class SourceFile:
    """One table's file in a source folder and the contract columns it carries."""

    table: str
    path: Path
    fmt: str
    header: tuple[str, ...]  # every header name, stripped of spaces
    columns: tuple[str, ...]  # the header's contract columns
    ignored: tuple[str, ...]  # columns that are not in the contract


def _header(path: Path, fmt: str) -> list[str]:
    try:
        if fmt == "csv":
            with open(path, encoding="utf-8-sig", newline="") as fh:  # -sig: Excel's UTF-8 BOM
                names = next(csv.reader(fh), [])
        else:
            names = list(pl.read_parquet_schema(path))
    except UnicodeDecodeError as exc:
        raise FatalInputError(f"{path}: not UTF-8 (the contract requires UTF-8): {exc.reason}") from exc
    except (pl.exceptions.PolarsError, OSError, csv.Error) as exc:
        raise FatalInputError(f"{path}: cannot read the header: {_first_line(exc)}") from exc
    if not names:
        raise FatalInputError(f"{path}: empty file (expected a header row)")
    return [n.strip() for n in names]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def find_sources(source: Path) -> dict[str, SourceFile]:
    """The tables present in ``source``, checked for required tables and columns (writes nothing)."""
    source = Path(source)
    if not source.is_dir():
        raise FatalInputError(f"{source}: source is not a folder")
    found: dict[str, SourceFile] = {}
    for name in TABLE_ORDER:
        table = TABLES[name]
        candidates = [(source / f"{name}.{fmt}", fmt) for fmt in SOURCE_FORMATS]
        present = [(p, fmt) for p, fmt in candidates if p.is_file()]
        if len(present) > 1:
            raise FatalInputError(
                f"{source}: table {name} is given twice ({name}.csv and {name}.parquet); keep one"
            )
        if not present:
            if table.required:
                raise FatalInputError(
                    f"{source}: missing required table {name} ({name}.csv or {name}.parquet)"
                )
            continue
        path, fmt = present[0]
        header = _header(path, fmt)
        repeated = sorted({c for c in header if header.count(c) > 1})
        if repeated:
            raise FatalInputError(f"{path}: header repeats column {', '.join(repeated)}")
        missing = [c for c in table.required_columns if c not in header]
        if missing:
            cols = ", ".join(missing)
            raise FatalInputError(
                f"{path}: table {name} is missing required column{'s' if len(missing) > 1 else ''} {cols}"
            )
        known = set(table.column_names)
        found[name] = SourceFile(
            table=name, path=path, fmt=fmt, header=tuple(header),
            columns=tuple(c for c in header if c in known),
            ignored=tuple(c for c in header if c not in known),
        )
    return found


def read_source(src: SourceFile) -> pl.DataFrame:
    """The table's contract columns as text, plus ``__row`` (1-based data row, header not counted).

    CSV cells are read as strings so that one bad cell becomes one quarantined row, never a crash;
    Parquet values are cast to text and go through the same checks. A CSV that Polars' fast reader
    refuses (an unbalanced quote, rows of odd widths) is read again record by record
    (``read_csv_records``), so its malformed rows are quarantined and the others still count.
    """
    try:
        if src.fmt == "csv":
            # One spare column catches fields beyond the header, so a ragged row is quarantined
            # (validate.EXTRA) instead of being cut short silently or stopping the whole file.
            names = [*src.header, EXTRA]
            try:
                frame = pl.read_csv(
                    src.path, has_header=False, skip_rows=1, schema=dict.fromkeys(names, pl.String),
                    missing_columns="insert", truncate_ragged_lines=True,
                )
            except pl.exceptions.PolarsError:
                frame = read_csv_records(src)
            return frame.select([*src.columns, EXTRA]).with_row_index(ROW, offset=1)
        else:
            frame = pl.read_parquet(src.path)
            frame = frame.rename({c: c.strip() for c in frame.columns})
            frame = frame.select(
                (pl.col(c).cast(pl.Date) if isinstance(frame.schema[c], pl.Datetime) else pl.col(c))
                .cast(pl.String)
                for c in src.columns
            )
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        hint = " (the contract requires UTF-8)" if "utf" in str(exc).lower() else ""
        raise FatalInputError(f"{src.path}: cannot read {src.fmt.upper()}{hint}: {_first_line(exc)}") from exc
    return frame.select(list(src.columns)).with_row_index(ROW, offset=1)


# A quoted field may span lines; an opening quote still unclosed after this many lines (or this many
# characters) is taken as unbalanced: its first line becomes one bad_shape row and reading resumes
# on the next line, so one stray quote cannot swallow the rest of the file.
MAX_RECORD_LINES = 50


MAX_RECORD_CHARS = 1_000_000


def read_csv_records(src: SourceFile) -> pl.DataFrame:
    """Read a CSV record by record with Python's csv module (the forgiving path of ``read_source``).

    Returns the header's columns plus ``EXTRA``: fields beyond the header, or the raw line of a
    record whose quotes never balance; both make the row ``bad_shape``. Missing trailing fields are
    empty, as in the fast path. Blank lines are skipped.
    """
    width = len(src.header)
    rows: list[list[str | None]] = []
    pending: deque[str] = deque()
    line_no = 1  # the header's line

    def emit(text: str) -> None:
        try:
            fields = next(csv.reader(io.StringIO(text)), [])
        except csv.Error:  # e.g. a field beyond csv.field_size_limit: the row is malformed
            rows.append([*([None] * width), text.rstrip("\r\n")])
            return
        cells: list[str | None] = [*fields[:width], *([None] * (width - len(fields)))]
        cells.append(",".join(fields[width:]) if len(fields) > width else None)
        rows.append(cells)

    try:
        with open(src.path, encoding="utf-8-sig", newline="") as fh:
            next(fh, None)  # the header, checked by find_sources
            source_lines = iter(fh)
            while True:
                line = pending.popleft() if pending else next(source_lines, None)
                if line is None:
                    break
                line_no += 1
                if not line.strip("\r\n"):
                    continue
                record, quotes, size = [line], line.count('"'), len(line)
                while quotes % 2 and len(record) < MAX_RECORD_LINES and size < MAX_RECORD_CHARS:
                    more = pending.popleft() if pending else next(source_lines, None)
                    if more is None:
                        break
                    record.append(more)
                    quotes += more.count('"')
                    size += len(more)
                if quotes % 2:  # never balanced: the first line alone is the bad row
                    rows.append([*([None] * width), line.rstrip("\r\n") or '"'])
                    pending.extendleft(reversed(record[1:]))
                    continue
                line_no += len(record) - 1
                emit("".join(record))
    except UnicodeDecodeError as exc:
        raise FatalInputError(
            f"{src.path}: not UTF-8 near line {line_no + 1} (the contract requires UTF-8): {exc.reason}"
        ) from exc
    names = [*src.header, EXTRA]
    return pl.DataFrame(rows, schema=dict.fromkeys(names, pl.String), orient="row")
