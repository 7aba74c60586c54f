"""Realistic bad rows for a synthetic city (``riskengine generate --dirty FRACTION``).

Every bad row is *added* next to the clean rows (clean rows stay as they were), so ``ingest`` can be
shown and tested on its quarantine: each kind below breaks exactly one rule of shared/CONTRACT.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from riskengine.core.contract import TABLE_ORDER, TABLES
from riskengine.core.ids import make_usccs

KINDS: tuple[str, ...] = (
    "bad_check_char",  # enterprise_id whose GB 32100-2015 check character is wrong
    "unknown_enterprise",  # event of an enterprise not in the enterprises table (a valid USCC elsewhere)
    "unknown_case",  # credit repair of a penalty case that does not exist
    "future_date",  # a typo'd year two centuries ahead
    "date_before_1990",  # 1970-01-01 / 1900-01-01 placeholders from old systems
    "unparseable_date",  # 2023-02-30 and the like (CSV only: a Parquet date column cannot hold them)
    "negative_value",  # negative fine, capital, units or findings count
    "bad_enum",  # a value outside the column's enum (English variants, Chinese labels)
    "conflicting_duplicate",  # an id already used, with different content
    "exact_duplicate",  # the same row twice
    "missing_required",  # an empty required cell
    "removed_before_listed",  # a list entry whose removal day precedes its listing day
)

# Columns where a negative number breaks the contract's minimum.
_NEGATIVE: dict[str, tuple[str, ...]] = {
    "enterprises": ("registered_capital",),
    "inspections": ("findings_minor", "findings_serious", "findings_critical"),
    "penalties": ("fine_cny",),
    "recalls": ("units",),
}
# Wrong values clerks actually type for an enum column.
_BAD_ENUMS: dict[str, dict[str, tuple[str, ...]]] = {
    "enterprises": {"status": ("closed", "注销", "Active")},
    "inspections": {"kind": ("routine", "专项检查"), "outcome": ("failed", "PASS", "合格")},
    "sampling_tests": {"result": ("不合格", "passed"), "hazard": ("critical",)},
    "penalties": {"severity": ("severe", "较重")},
    "recalls": {"mode": ("forced", "主动召回"), "hazard": ("extreme",)},
    "licenses": {"status": ("cancelled", "有效")},
    "list_entries": {"list": ("经营异常名录", "blacklist")},
    "commitments": {"kind": ("承诺", "promise"), "status": ("violated", "履约")},
}
_BAD_DATES = ("{y}-02-30", "{y}-13-01", "{y}-04-31", "{y}/06/15")
# Other Hubei cities' division codes: valid USCCs of enterprises that are not in this city's register.
_OTHER_DIVISIONS = ("420502", "420602", "420902", "421002")


def _flip(col: str) -> pl.Expr:
    return pl.when(pl.col(col) == "pass").then(pl.lit("fail")).otherwise(pl.lit("pass")).alias(col)


def _mutations() -> dict[str, Callable[[pl.DataFrame], pl.DataFrame]]:
    """For each table, a change of a non-key column that makes a same-id row conflict."""
    return {
        "enterprises": lambda f: f.with_columns(pl.col("registered_capital").fill_null(0) + 100.0),
        "inspections": lambda f: f.with_columns(_flip("outcome")),
        "sampling_tests": lambda f: f.with_columns(_flip("result")),
        "penalties": lambda f: f.with_columns(pl.col("fine_cny").fill_null(0) * 2 + 1000.0),
        "recalls": lambda f: f.with_columns(pl.col("units").fill_null(0) + 100),
        "complaints": lambda f: f.with_columns(pl.col("substantiated").not_().fill_null(True)),
        "licenses": lambda f: f.with_columns(pl.col("expires_on").fill_null(pl.col("issued_on"))
                                             .dt.offset_by("1y")),
        "credit_repairs": lambda f: f.with_columns(pl.col("repaired_on").dt.offset_by("-1d")),
        "list_entries": lambda f: f.with_columns(pl.col("listed_on").dt.offset_by("-1d")),
        "commitments": lambda f: f.with_columns(pl.col("made_on").dt.offset_by("-1d")),
        "record_voids": lambda f: f.with_columns(pl.col("voided_on").dt.offset_by("-1d")),
    }


def _applicable(kind: str, tables: dict[str, pl.DataFrame], text_dates: bool) -> list[str]:
    """The (non-empty) tables a kind of bad row can be added to."""
    present = [t for t in TABLE_ORDER if t in tables and tables[t].height > 0]
    events = [t for t in present if "enterprise_id" in TABLES[t].schema and t != "enterprises"]
    match kind:
        case "bad_check_char":
            return ["enterprises"] if "enterprises" in present else []
        case "unknown_enterprise":
            return events
        case "unknown_case":
            return [t for t in present if t == "credit_repairs"]
        case "future_date":
            return present
        case "date_before_1990":
            return [t for t in present if TABLES[t].event_date]
        case "unparseable_date":
            return present if text_dates else []
        case "negative_value":
            return [t for t in present if t in _NEGATIVE]
        case "bad_enum":
            return [t for t in present if t in _BAD_ENUMS]
        case "removed_before_listed":
            return [t for t in present if t == "list_entries"]
    return present


def _date_column(table: str) -> str:
    return TABLES[table].event_date or "established_on"


def inject_dirty(
    tables: dict[str, pl.DataFrame], fraction: float, seed: int, *, allow_text_dates: bool = True
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """Add about ``fraction`` x (clean rows) bad rows, spread over the kinds and tables they apply to.

    Every applicable kind gets at least one row. Returns the new tables and what was injected:
    ``{"total": n, "by_kind": {kind: n}, "by_table": {table: {kind: n}}}``.
    """
    rng = np.random.default_rng([seed, 0xD1E7])
    kinds = [k for k in KINDS if _applicable(k, tables, allow_text_dates)]
    clean_rows = sum(f.height for f in tables.values())
    total = max(len(kinds), round(fraction * clean_rows))
    per_kind = np.full(len(kinds), total // len(kinds))
    per_kind[: total % len(kinds)] += 1

    added: dict[str, list[pl.DataFrame]] = {t: [] for t in tables}
    text_cols: dict[str, set[str]] = {t: set() for t in tables}
    by_table: dict[str, dict[str, int]] = {t: {} for t in tables}
    fresh = iter(range(10**9))  # serials for new ids, unique across all injected rows
    next_number = 80_000_000  # organisation-code numbers the clean city never uses (synth._make_world)
    mutate = _mutations()

    for kind, count in zip(kinds, per_kind, strict=True):
        targets = _applicable(kind, tables, allow_text_dates)
        weights = np.array([tables[t].height for t in targets], dtype=float)
        split = rng.multinomial(count, weights / weights.sum())
        for table, k in zip(targets, split, strict=True):
            if k == 0:
                continue
            spec, clean = TABLES[table], tables[table]
            idx = rng.integers(0, clean.height, k)
            rows = clean[idx]
            key = spec.key
            if kind not in ("conflicting_duplicate", "exact_duplicate"):
                if table == "enterprises":


                    divisions = rows["district"].fill_null("420106").to_numpy().astype("U6")
                    numbers = np.arange(next_number, next_number + k)
                    next_number += k
                    corrupt = np.full(k, kind == "bad_check_char")
                    rows = rows.with_columns(pl.Series(key, make_usccs(divisions, numbers, corrupt=corrupt)))
                else:
                    serials = [next(fresh) for _ in range(k)]
                    suffix = pl.Series(serials).cast(pl.String).str.zfill(6)
                    rows = rows.with_columns(pl.concat_str([pl.col(key), pl.lit("-X"), suffix]).alias(key))
            rows = _break(kind, table, rows, rng, mutate, text_cols, next_number)
            if kind == "unknown_enterprise":
                next_number += k
            # Duplicates come after their original (so "first seen wins" keeps the clean row);
            # other bad rows land anywhere in the file.
            if kind in ("conflicting_duplicate", "exact_duplicate"):
                pos = idx + 0.5 + rng.random(k) * (clean.height - idx - 0.5)
            else:
                pos = rng.random(k) * clean.height
            added[table].append(rows.with_columns(pl.Series("__pos", pos)))
            by_table[table][kind] = by_table[table].get(kind, 0) + int(k)

    out: dict[str, pl.DataFrame] = {}
    for table, clean in tables.items():
        if not added[table]:
            out[table] = clean
            continue
        base = clean.with_columns(pl.Series("__pos", np.arange(clean.height, dtype=float)))
        parts = [base, *added[table]]
        if text_cols[table]:
            parts = [p.with_columns([pl.col(c).cast(pl.String) for c in text_cols[table]]) for p in parts]
        out[table] = pl.concat(parts, how="vertical").sort("__pos", maintain_order=True).drop("__pos")
    by_kind = {k: sum(t.get(k, 0) for t in by_table.values()) for k in KINDS}
    injected = {"total": int(sum(by_kind.values())), "by_kind": by_kind,
                "by_table": {t: v for t, v in by_table.items() if v}}
    return out, injected


def _break(kind: str, table: str, rows: pl.DataFrame, rng: np.random.Generator,
           mutate: dict[str, Callable[[pl.DataFrame], pl.DataFrame]], text_cols: dict[str, set[str]],
           next_number: int) -> pl.DataFrame:
    """Make ``rows`` break the rule of ``kind`` (and only that rule)."""
    k = rows.height
    spec = TABLES[table]
    match kind:
        case "unknown_enterprise":


            divisions = np.array(_OTHER_DIVISIONS)[rng.integers(0, len(_OTHER_DIVISIONS), k)]
            ids = make_usccs(divisions, np.arange(next_number, next_number + k))
            return rows.with_columns(pl.Series("enterprise_id", ids))
        case "unknown_case":
            missing = pl.concat_str([pl.lit("PEN-0000-"), pl.col("repair_id")])
            return rows.with_columns(missing.alias("case_id"))
        case "future_date":
            # Licences: a typo in the status date (issue and expiry stay in order); elsewhere the event
            # date, with recorded_on emptied so the row breaks no order rule besides.
            if table == "licenses":
                return rows.with_columns(pl.col("status_changed_on").dt.offset_by("200y"))
            if table == "list_entries":  # a removal two centuries ahead (after its listing, still bad)
                return rows.with_columns(pl.col("listed_on").dt.offset_by("200y").alias("removed_on"),
                                         pl.lit("rectified").alias("removal_reason"))
            if table == "commitments":  # an open commitment made two centuries ahead
                rows = rows.with_columns(pl.lit(None, dtype=pl.Date).alias("due_on"),
                                         pl.lit(None, dtype=pl.Date).alias("status_changed_on"),
                                         pl.lit("open").alias("status"))
            col = _date_column(table)
            rows = rows.with_columns(pl.col(col).dt.offset_by("200y"))
            if "recorded_on" in rows.columns:
                rows = rows.with_columns(pl.lit(None, dtype=pl.Date).alias("recorded_on"))
            return rows
        case "date_before_1990":
            col = _date_column(table)
            old = np.where(np.arange(k) % 2 == 0, np.datetime64("1970-01-01"), np.datetime64("1900-01-01"))
            return rows.with_columns(pl.Series(col, old.astype("datetime64[D]")))
        case "unparseable_date":
            col = _date_column(table)
            text_cols[table].add(col)
            pattern = pl.Series(_BAD_DATES).gather(rng.integers(0, len(_BAD_DATES), k))
            years = rows[col].dt.year().cast(pl.String)
            texts = [p.format(y=y) for p, y in zip(pattern, years, strict=True)]
            return rows.with_columns(pl.Series(col, texts, dtype=pl.String))
        case "negative_value":
            numeric = _NEGATIVE[table]
            col = numeric[int(rng.integers(0, len(numeric)))]
            dtype = rows.schema[col]
            step = 1 if dtype.is_integer() else 100.0
            return rows.with_columns((-(pl.col(col).fill_null(0).abs() + step)).cast(dtype).alias(col))
        case "bad_enum":
            choices = _BAD_ENUMS[table]
            col = list(choices)[int(rng.integers(0, len(choices)))]
            values = pl.Series(choices[col]).gather(rng.integers(0, len(choices[col]), k))
            return rows.with_columns(values.alias(col))
        case "conflicting_duplicate":
            # A table without a change of its own (e.g. a new one) conflicts by its date a day earlier.
            shift = lambda f: f.with_columns(pl.col(_date_column(table)).dt.offset_by("-1d"))  # noqa: E731
            return mutate.get(table, shift)(rows)
        case "removed_before_listed":
            before = pl.col("listed_on").dt.offset_by(f"-{1 + int(rng.integers(0, 30))}d")
            return rows.with_columns(before.alias("removed_on"), pl.lit("rectified").alias("removal_reason"))
        case "missing_required":
            required = [c for c in spec.required_columns if c != spec.key]
            col = required[int(rng.integers(0, len(required)))]
            return rows.with_columns(pl.lit(None, dtype=rows.schema[col]).alias(col))
    return rows  # bad_check_char (id already corrupted) and exact_duplicate
