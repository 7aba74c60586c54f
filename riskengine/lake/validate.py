"""Column-wise validation of one source table against the contract (shared/CONTRACT.md, section 1).

A source table arrives as strings (CSV cells, or Parquet values cast to text) plus a 1-based
``__row`` number. Every rule is one Polars expression over whole columns, so validating millions of
rows costs a few passes and no Python loop over rows. The result is the typed good rows and a long
*quarantine* frame with one entry per broken rule (row_number, column, value, rule, reason); a row
that breaks several rules appears several times, and callers count distinct ``row_number``s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl

from riskengine.core.contract import EARLIEST_EVENT, Column, Table
from riskengine.core.ids import uscc_reason, uscc_valid

ROW = "__row"
"""Name of the 1-based data-row number column (the header is not counted)."""

EXTRA = "__extra_fields"
"""Name of the column that catches CSV fields beyond the header (a row with an unquoted comma)."""

MAX_CELL_CHARS = 4000
"""Longest cell accepted (names, addresses and categories are far shorter; a longer one is an error)."""

SHOWN_CHARS = 200
"""Longest value the quarantine keeps (and so the report's examples): the start, then its length."""

# Control characters other than tab, line feed and carriage return (a NUL byte above all).
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"

# Founding dates are not events: old state enterprises predate 1990, but a year before 1900 is a typo.
EARLIEST_FOUNDING = date(1900, 1, 1)

# Columns that may legitimately lie in the future (a licence's expiry date).
FUTURE_ALLOWED = frozenset({"expires_on", "due_on"})

# Spellings accepted for booleans (lower-cased before lookup); Chinese forms are common in exports.
BOOL_VALUES: dict[str, bool] = {
    "true": True, "false": False, "1": True, "0": False, "yes": True, "no": False,
    "t": True, "f": False, "y": True, "n": False, "是": True, "否": False,
}

# Every rule a row can break: code -> (Chinese label for officers, English label).
RULES: dict[str, tuple[str, str]] = {
    "missing_value": ("必填项为空", "required value is empty"),
    "bad_type": ("格式错误", "value has the wrong type or format"),
    "bad_enum": ("取值不在允许范围", "value is not one of the allowed codes"),
    "below_minimum": ("数值为负或低于下限", "value is below its minimum"),
    "future_date": ("日期晚于导入日", "date is after the ingest day"),
    "too_early": ("日期早于允许的最早日期", "date is before the earliest allowed date"),
    "date_order": ("日期先后矛盾", "dates are in an impossible order"),
    "bad_shape": ("行无法按表头拆分", "row has more fields than the header, or an unbalanced quote"),
    "bad_char": ("含有不可见控制字符", "value contains a NUL byte or another control character"),
    "too_long": ("内容超长", "value is longer than a cell may be"),
    "bad_uscc": ("统一社会信用代码无效", "not a valid Unified Social Credit Code"),
    "unknown_reference": ("引用的记录不存在", "refers to a record that does not exist"),
    "duplicate_id": ("同一来源内编号重复且内容不同", "id repeated in this source with different content"),
    "conflict": ("编号已在数据湖中且内容不同", "id already in the lake with different content"),
    "inconsistent": ("字段之间相互矛盾", "values contradict each other"),
    "bulk_day": ("单日记录数异常（批量补录）", "far more inspections on one day than inspectors can make"),
}

# A day holding at least BULK_DAY_MIN_ROWS inspections and more than BULK_DAY_FACTOR times the median
# day of the same source is a bulk entry (placeholders typed in on one day), not visits: Boston's
# export holds 1,549 inspections on 2012-12-30 and 868 on 2013-12-30, 99 % of them without a single
# violation, against a median of about 15 a day. Kept, they read as clean visits for most of the
# city at once and bend every history feature and label after them.
BULK_DAY_MIN_ROWS = 200
BULK_DAY_FACTOR = 20

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "row_number": pl.Int64(),
    "column": pl.String(),
    "value": pl.String(),
    "rule": pl.String(),
    "reason": pl.String(),
}

_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_TYPE_WORDS = {
    "date": "not an ISO date (YYYY-MM-DD)",
    "int": "not a whole number",
    "float": "not a finite number",
    "bool": "not a yes/no value (true/false, 1/0, 是/否)",
}


@dataclass(frozen=True)
class Check:
    """One rule over one column: ``bad`` is true on the rows that break it, ``reason`` explains."""

    column: str
    rule: str
    bad: pl.Expr
    reason: pl.Expr
    value: pl.Expr | None = None  # what to show as the value; the column's raw text by default


@dataclass(frozen=True)
class Validated:
    """The outcome of validating one table: typed good rows (with ``__row``) and the quarantine."""

    good: pl.DataFrame
    quarantine: pl.DataFrame


def raw(name: str) -> pl.Expr:
    """The original text of a cell (as read; used for the quarantine's ``value``)."""
    return pl.col(f"__raw__{name}")


def _clean(name: str) -> pl.Expr:
    text = raw(name).str.strip_chars()
    return pl.when(text.str.len_chars() > 0).then(text)


def cleaned(name: str) -> pl.Expr:
    """The cell's text with surrounding spaces removed; empty cells are null.

    Computed once per column (``__txt__<name>``) before the checks, which all read it.
    """
    return pl.col(f"__txt__{name}")


def parse(column: Column) -> pl.Expr:
    """The typed value of a cell, null where it is empty or cannot be parsed."""
    text = cleaned(column.name)
    if column.type == "date":
        return pl.when(text.str.contains(_ISO_DATE)).then(text.str.to_date("%Y-%m-%d", strict=False))
    if column.type == "int":
        # "3.0" is a whole number too (Parquet written by pandas stores nullable ints as floats).
        as_float = text.cast(pl.Float64, strict=False)
        whole = pl.when(as_float.is_finite() & (as_float == as_float.floor())).then(as_float)
        return pl.coalesce(text.cast(pl.Int64, strict=False), whole.cast(pl.Int64, strict=False))
    if column.type == "float":
        value = text.cast(pl.Float64, strict=False)
        return pl.when(value.is_finite()).then(value)
    if column.type == "bool":
        return text.str.to_lowercase().replace_strict(BOOL_VALUES, default=None, return_dtype=pl.Boolean)
    return text


def shown(value: pl.Expr) -> pl.Expr:
    """A value as the quarantine keeps it: at most ``SHOWN_CHARS`` characters, then its length."""
    text = value.cast(pl.String)
    return (pl.when(text.str.len_chars() > SHOWN_CHARS)
            .then(pl.format("{}… ({} characters)", text.str.slice(0, SHOWN_CHARS), text.str.len_chars()))
            .otherwise(text))


def _date_floor(table: Table, column: Column) -> date:
    founding = (table.name, column.name) == ("enterprises", "established_on")
    return EARLIEST_FOUNDING if founding else EARLIEST_EVENT


def column_checks(table: Table, column: Column, *, ingest_day: date, id_scheme: str) -> list[Check]:
    """The cell rules of one column: required, type, enum, minimum, date range, id scheme."""
    name = column.name
    text, value = cleaned(name), pl.col(name)
    checks: list[Check] = [
        Check(name, "bad_char", raw(name).str.contains(_CONTROL),
              pl.lit("contains a NUL byte or another control character")),
        Check(name, "too_long", raw(name).str.len_chars() > MAX_CELL_CHARS,
              pl.format(f"{{}} characters; at most {MAX_CELL_CHARS:,} are allowed",
                        raw(name).str.len_chars())),
    ]
    if column.required:
        checks.append(Check(name, "missing_value", text.is_null(), pl.lit("required value is empty")))
    if column.type in _TYPE_WORDS:
        checks.append(Check(name, "bad_type", text.is_not_null() & value.is_null(),
                            pl.lit(_TYPE_WORDS[column.type])))
    if column.enum:
        allowed = ", ".join(column.enum)
        checks.append(Check(name, "bad_enum", text.is_not_null() & ~text.is_in(list(column.enum)),
                            pl.lit(f"not one of: {allowed}")))
    if column.minimum is not None:
        checks.append(Check(name, "below_minimum", value < column.minimum,
                            pl.lit(f"must be ≥ {column.minimum:g}")))
    if column.type == "date":
        if name not in FUTURE_ALLOWED:
            checks.append(Check(name, "future_date", value > ingest_day,
                                pl.lit(f"date is after the ingest day {ingest_day.isoformat()}")))
        floor = _date_floor(table, column)
        checks.append(Check(name, "too_early", value < floor,
                            pl.lit(f"date is before {floor.isoformat()}")))
    if name == table.key and table.name == "enterprises" and id_scheme == "uscc":
        # The cheap test flags the rows; the wordier reason is built for flagged rows only.
        checks.append(Check(name, "bad_uscc", text.is_not_null() & ~uscc_valid(text), uscc_reason(text)))
    return checks


def _after(later: str, earlier: str) -> Check:
    """``later`` must not be before ``earlier`` when both are present."""
    bad = pl.col(later) < pl.col(earlier)
    reason = pl.format(f"{later} is before {earlier} ({{}})", pl.col(earlier).cast(pl.String))
    return Check(later, "date_order", bad, reason)


def bulk_day_rule(table: Table) -> tuple[list[pl.Expr], Check] | None:
    """Inspections on a day far busier than the source's median day (``bulk_day``; see BULK_DAY_FACTOR):
    the per-day counts to add over the whole source before any filter, and the check that reads them."""
    if table.name != "inspections":
        return None
    day = pl.col("inspected_on")
    counts = [pl.len().over(day).alias("__day_rows"),
              day.drop_nulls().unique_counts().median().alias("__day_median")]
    n, typical = pl.col("__day_rows"), pl.col("__day_median")
    bad = day.is_not_null() & (n >= BULK_DAY_MIN_ROWS) & (n > BULK_DAY_FACTOR * typical)
    reason = pl.concat_str(
        n.cast(pl.String), pl.lit(" inspections on "), day.dt.to_string("%Y-%m-%d"),
        pl.lit(" against a median of "), typical.round(0).cast(pl.Int64).cast(pl.String),
        pl.lit(" a day in this source: a bulk entry, not visits (ingest --keep-bulk-days keeps them)"))
    return counts, Check("inspected_on", "bulk_day", bad, reason)


def row_checks(table: Table) -> list[Check]:
    """Rules across columns of one row."""
    names = set(table.column_names)
    checks: list[Check] = []
    # A record cannot enter the bureau's systems before the event it records.
    if table.event_date and "recorded_on" in names:
        checks.append(_after("recorded_on", table.event_date))
    if table.name == "licenses":
        checks.append(_after("expires_on", "issued_on"))
        checks.append(_after("status_changed_on", "issued_on"))
    if table.name == "list_entries":
        # Removal before listing; a removal reason without a removal day; only an abnormal-operation
        # entry can move to the serious list (after 3 years, 市场主体登记管理条例实施细则).
        checks.append(_after("removed_on", "listed_on"))
        checks.append(Check(
            "removal_reason", "inconsistent",
            pl.col("removal_reason").is_not_null() & pl.col("removed_on").is_null(),
            pl.lit("removal_reason is given but removed_on is empty")))
        checks.append(Check(
            "removal_reason", "inconsistent",
            (pl.col("removal_reason") == "moved_to_serious") & (pl.col("list") != "abnormal_operation"),
            pl.lit("only an abnormal_operation entry can be moved_to_serious")))
    if table.name == "commitments":
        checks.append(_after("due_on", "made_on"))
        checks.append(_after("status_changed_on", "made_on"))
        # A kept or breached commitment without the day it happened could never count as of any D.
        checks.append(Check(
            "status_changed_on", "missing_value",
            pl.col("status").is_in(["kept", "breached"]) & pl.col("status_changed_on").is_null(),
            pl.lit("status_changed_on is required when status is kept or breached")))
    return checks


def reference_checks(
    table: Table,
    known: Mapping[tuple[str, str], pl.Series],
    rejected: Mapping[tuple[str, str], pl.Series] | None = None,
) -> list[Check]:
    """Values that must exist in another table (the lake's plus this run's accepted rows).

    ``rejected`` holds ids this run quarantined in the referenced table, so the reason can say that
    the row fails because its enterprise (or case) was itself rejected, not because it is unknown.
    """
    checks: list[Check] = []
    for column in table.columns:
        if column.references is None:
            continue
        target_table, target_column = column.references
        ids = known.get(column.references, pl.Series(dtype=pl.String))
        held = (rejected or {}).get(column.references, pl.Series(dtype=pl.String))
        bad = pl.col(column.name).is_not_null() & ~pl.col(column.name).is_in(ids.implode())
        reason = (
            pl.when(pl.col(column.name).is_in(held.implode()))
            .then(pl.lit(f"{target_column} is quarantined in this run's {target_table}; fix that row first"))
            .otherwise(pl.lit(f"unknown {target_column}: not in {target_table} (lake or this source)"))
        )
        checks.append(Check(column.name, "unknown_reference", bad, reason))
    return checks


def validate_table(
    table: Table,
    frame: pl.DataFrame,
    *,
    ingest_day: date,
    id_scheme: str = "uscc",
    known: Mapping[tuple[str, str], pl.Series] | None = None,
    rejected: Mapping[tuple[str, str], pl.Series] | None = None,
    keep_bulk_days: bool = False,
) -> Validated:
    """Check every contract rule on ``frame`` (string columns named as the contract, plus ``__row``).

    Absent optional columns count as empty; optional columns with a default get it where empty.
    ``keep_bulk_days`` accepts inspections on bulk-entry days (rule ``bulk_day``).
    """
    present = set(frame.columns)
    frame = frame.select(
        ROW,
        (pl.col(EXTRA) if EXTRA in present else pl.lit(None, dtype=pl.String)).alias(EXTRA),
        *[
            (pl.col(c.name) if c.name in present else pl.lit(None, dtype=pl.String))
            .cast(pl.String).alias(f"__raw__{c.name}")
            for c in table.columns
        ],
    )
    frame = frame.with_columns(_clean(c.name).alias(f"__txt__{c.name}") for c in table.columns)
    typed = frame.with_columns(parse(c).alias(c.name) for c in table.columns)
    checks = [
        check
        for column in table.columns
        for check in column_checks(table, column, ingest_day=ingest_day, id_scheme=id_scheme)
    ]
    checks += row_checks(table) + reference_checks(table, known or {}, rejected)
    if not keep_bulk_days and (bulk := bulk_day_rule(table)) is not None:
        counts, check = bulk
        typed = typed.with_columns(counts)
        checks.append(check)
    # The fields of a row with more fields than the header are misaligned: none of them can be trusted.
    checks.append(Check("(row)", "bad_shape", pl.col(EXTRA).is_not_null(),
                        pl.lit("row has more fields than the header (an unquoted comma?) or a quote "
                               "that is never closed"),
                        value=pl.col(EXTRA)))
    flags = typed.with_columns(
        check.bad.fill_null(False).alias(f"__bad{i}") for i, check in enumerate(checks)
    )
    any_bad = pl.any_horizontal(pl.col(f"__bad{i}") for i in range(len(checks))) if checks else pl.lit(False)
    flags = flags.with_columns(any_bad.alias("__any_bad"))
    bad_rows = flags.filter(pl.col("__any_bad"))
    # Only the (few) bad rows are reshaped into the long quarantine: one select per rule, not per row.
    parts = [
        bad_rows.filter(pl.col(f"__bad{i}")).select(
            pl.col(ROW).cast(pl.Int64).alias("row_number"),
            pl.lit(check.column).alias("column"),
            shown(raw(check.column) if check.value is None else check.value).alias("value"),
            pl.lit(check.rule).alias("rule"),
            check.reason.cast(pl.String).alias("reason"),
        )
        for i, check in enumerate(checks)
    ]
    quarantine = (
        pl.concat(parts).sort("row_number", maintain_order=True)
        if parts else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    )
    good = flags.filter(~pl.col("__any_bad")).select(
        ROW,
        *[_filled(table, c).cast(table.schema[c.name]).alias(c.name) for c in table.columns],
    )
    return Validated(good=good, quarantine=quarantine)


def _filled(table: Table, column: Column) -> pl.Expr:
    """A column with its default where empty; an empty district takes a USCC's division code first."""
    value = pl.col(column.name)
    if (table.name, column.name) == ("enterprises", "district"):
        # CONTRACT section 1: characters 3-8 of a valid USCC are the administrative division code.
        division = pl.when(uscc_valid(pl.col("enterprise_id")).fill_null(False)).then(
            pl.col("enterprise_id").str.slice(2, 6))
        value = pl.coalesce(value, division)
    return value.fill_null(pl.lit(column.default)) if column.default is not None else value


def empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)
