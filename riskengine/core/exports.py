"""Files that officers open in Excel, made safe to open: one helper per format, used by every export
(grades, plans from the CLI and the API, the quarantine list, the audit log), and the one way a
nested column becomes a cell (``flat`` for reasons, ``csv_safe`` for the rest).

- **CSV** (OWASP, "CSV Injection"): a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return is prefixed with a single quote, so a spreadsheet shows it as text instead of
  running it as a formula; a ``-`` that starts a number (``-3.5``) is left alone. Every text cell is
  quoted. CSVs carry a UTF-8 BOM so that Excel reads the Chinese text.
- **xlsx**: every text cell is written as a string, never a formula, link or number
  (xlsxwriter's ``strings_to_formulas`` / ``strings_to_urls`` / ``strings_to_numbers`` off).
- **Sheet names**: Excel allows at most 31 characters, none of ``[]:*?/\\``, no ``'`` at either end,
  not ``History``, and no two equal ignoring case; ``sheet_name`` makes any label fit.
"""

from __future__ import annotations

import io
import re
from collections.abc import Collection
from pathlib import Path
from typing import IO, Any, Literal

import polars as pl
import xlsxwriter

# OWASP: cells beginning with these are interpreted as formulas by spreadsheet programs.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"

WORKBOOK_OPTIONS: dict[str, Any] = {
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    "remove_timezone": True,
}

SHEET_FORBIDDEN = "[]:*?/\\"
SHEET_MAX = 31
SHEET_RESERVED = frozenset({"history"})


def escape_cell(value: str) -> str:
    """One text cell made inert for spreadsheets (see the module docstring)."""
    if value.startswith(FORMULA_STARTS) and not re.match(_NUMBER, value):
        return "'" + value
    return value


def escape_text(expr: pl.Expr) -> pl.Expr:
    """``escape_cell`` over a string column, vectorised."""
    risky = expr.str.contains(r"^[=+\-@\t\r]") & ~expr.str.contains(_NUMBER)
    return pl.when(risky).then(pl.lit("'") + expr).otherwise(expr)


ReasonsStyle = Literal["json", "lines", "zh"]


def reasons_text(column: str, style: ReasonsStyle) -> pl.Expr:
    """A reasons column (a list of structs with ``text_zh`` / ``text_en``) as one text cell: ``json`` a
    JSON array (a grades CSV, read back by ``read_grades``), ``lines`` each reason's "中文 / English" on
    a line of its own (Excel), ``zh`` the Chinese sentences joined by '；' (a plan list)."""
    col = pl.col(column)
    if style == "json":
        return pl.format("[{}]", col.list.eval(pl.element().struct.json_encode()).list.join(","))
    if style == "lines":
        return col.list.eval(
            pl.format("{} / {}", pl.element().struct.field("text_zh"), pl.element().struct.field("text_en"))
        ).list.join("；\n")
    return col.list.eval(pl.element().struct.field("text_zh")).list.join("；")


def _is_reasons(dtype: Any) -> bool:
    return (isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct)
            and "text_zh" in [f.name for f in dtype.inner.fields])


def flat(frame: pl.DataFrame, *, reasons: ReasonsStyle) -> pl.DataFrame:
    """``frame`` with every reasons column as text (``reasons_text``); other nested columns are left for
    ``csv_safe``, which writes lists joined by '; ' and structs as JSON."""
    return frame.select([reasons_text(name, reasons).alias(name) if _is_reasons(dtype) else pl.col(name)
                         for name, dtype in frame.schema.items()])


def csv_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with every text column escaped and nested columns flattened to JSON text."""
    return frame.select(_safe_columns(frame.schema))


def csv_safe_lazy(frame: pl.LazyFrame) -> pl.LazyFrame:
    """``csv_safe`` for a lazy frame (e.g. before ``sink_csv``)."""
    return frame.select(_safe_columns(frame.collect_schema()))


def _safe_columns(schema: Any) -> list[pl.Expr]:
    exprs = []
    for name, dtype in schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.List | pl.Array | pl.Struct):
            text = (col.struct.json_encode() if isinstance(dtype, pl.Struct)
                    else col.cast(pl.List(pl.String), strict=False).list.join("; ")
                    if not isinstance(dtype.inner, pl.Struct | pl.List)  # type: ignore[union-attr]
                    else col.list.eval(pl.element().struct.json_encode()
                                       if isinstance(dtype.inner, pl.Struct)  # type: ignore[union-attr]
                                       else pl.element().cast(pl.String, strict=False)).list.join("; "))
            exprs.append(escape_text(text).alias(name))
        elif dtype in (pl.String, pl.Categorical, pl.Enum) or isinstance(dtype, pl.Enum | pl.Categorical):
            exprs.append(escape_text(col.cast(pl.String)).alias(name))
        else:
            exprs.append(col)
    return exprs


def write_csv(frame: pl.DataFrame, target: Path | IO[bytes], *, bom: bool = True) -> None:
    """Write ``frame`` as CSV that is safe to open in a spreadsheet (escaped, text quoted, BOM)."""
    csv_safe(frame).write_csv(target, include_bom=bom, quote_style="non_numeric")


def csv_bytes(frame: pl.DataFrame, *, bom: bool = True) -> bytes:
    """``write_csv`` into bytes (for HTTP responses)."""
    buffer = io.BytesIO()
    write_csv(frame, buffer, bom=bom)
    return buffer.getvalue()


def workbook(path: Path | str) -> Any:
    """An xlsxwriter workbook that writes every string as text (never a formula, link or number)."""

    return xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)


def write_xlsx(frame: pl.DataFrame, path: Path, *, worksheet: str, **options: Any) -> None:
    """``frame.write_excel`` into a safe workbook (see ``workbook``)."""
    book = workbook(path)
    try:
        frame.write_excel(book, worksheet=sheet_name(worksheet, ()), **options)
    finally:
        book.close()


def sheet_name(label: str, used: Collection[str]) -> str:
    """``label`` as a valid Excel sheet name that is not in ``used`` (compared ignoring case)."""
    taken = {u.lower() for u in used}
    clean = "".join("_" if ch in SHEET_FORBIDDEN or ord(ch) < 32 else ch for ch in label)
    clean = clean[:SHEET_MAX].strip("'").strip() or "sheet"
    if clean.lower() in SHEET_RESERVED:
        clean = f"{clean}_"
    candidate, n = clean, 2
    while candidate.lower() in taken:
        suffix = f" ({n})"
        candidate = clean[: SHEET_MAX - len(suffix)].rstrip("'").rstrip() + suffix
        n += 1
    return candidate
