"""A bureau's own export → contract tables by a declared mapping (`ingest SOURCE --mapping FILE`).

The mapping is a TOML file, one section per contract table (``benchmarks/mappings/boston.toml`` is a
worked example)::

    [tables.inspections]
    file = "AllViolations.csv"            # in SOURCE (.csv or .parquet)
    columns = { enterprise_id = "restaurant_id", inspected_on = "date", findings_critical = "***" }
    values.outcome = { "Pass w/ Conditions" = "conditional" }   # source value → contract value
    constants = { kind = "random" }       # a column every row gets
    row_id = { inspection_id = "B" }      # an id made of a prefix and the row number
    outcome = { rules = [["findings_critical", "fail"], ["findings_serious", "conditional"]],
                otherwise = "pass" }      # the first count > 0 names the outcome
    kind = { follow_up_within_days = 30, otherwise = "random" }  # a visit soon after the last one

    [tables.enterprises]
    from_table = "inspections"            # one row per enterprise id seen there
    constants = { status = "active" }

Mapping writes contract CSV files (every cell as text, one row per source row in the same order, so
the quarantine's row numbers still point into the bureau's file); the ordinary ingest then validates
them. A mistake in the mapping is a ``ConfigError`` that names the key, e.g.
``boston.toml: tables.inspections.columns.inspected_on: no column 'day' in AllViolations.csv``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from riskengine.core.contract import TABLES
from riskengine.core.errors import ConfigError, FatalInputError


class _Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[tuple[str, str]] = Field(min_length=1)
    otherwise: str


class _Kind(BaseModel):
    model_config = ConfigDict(extra="forbid")

    follow_up_within_days: int = Field(gt=0)
    otherwise: str = "random"


class _TableMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str | None = None
    from_table: str | None = None
    columns: dict[str, str] = {}
    values: dict[str, dict[str, str]] = {}
    constants: dict[str, str | int | float | bool] = {}
    row_id: dict[str, str] = {}
    outcome: _Outcome | None = None
    kind: _Kind | None = None


class _MappingFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tables: dict[str, _TableMapping]


def _describe(error: Any) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{loc}: not a known key"
    if error["type"] == "missing":
        return f"{loc}: missing"
    return f"{loc}: {error['msg'].removeprefix('Value error, ')}; got {error.get('input')!r}"


def load_mapping(path: Path) -> dict[str, _TableMapping]:
    """Read and check a mapping file's keys (not yet against the source's columns)."""
    path = Path(path)
    name = path.name
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the mapping file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from None
    try:
        parsed = _MappingFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{name}: " + f"\n{name}: ".join(_describe(e) for e in exc.errors())) from None
    problems: list[str] = []
    for table, m in parsed.tables.items():
        key = f"tables.{table}"
        if table not in TABLES:
            problems.append(f"{key}: not a contract table (one of {', '.join(TABLES)})")
            continue
        if (m.file is None) == (m.from_table is None):
            problems.append(f"{key}: give exactly one of file or from_table")
        if m.from_table is not None and m.from_table not in parsed.tables:
            problems.append(f"{key}.from_table: no table {m.from_table!r} in this mapping")
        known = set(TABLES[table].column_names)
        for section in ("columns", "values", "constants", "row_id"):
            for column in getattr(m, section):
                if column not in known:
                    problems.append(f"{key}.{section}.{column}: not a column of {table} "
                                    f"({', '.join(TABLES[table].column_names)})")
        if m.outcome is not None:
            if "outcome" not in known:
                problems.append(f"{key}.outcome: {table} has no outcome column")
            for i, (count, _) in enumerate(m.outcome.rules):
                if count not in m.columns:
                    problems.append(f"{key}.outcome.rules[{i}]: {count!r} is not mapped in {key}.columns")
        if m.kind is not None and (table != "inspections" or "enterprise_id" not in m.columns
                                   or "inspected_on" not in m.columns):
            problems.append(f"{key}.kind: needs the inspections table with enterprise_id and "
                            "inspected_on mapped")
    if problems:
        raise ConfigError(f"{name}: " + f"\n{name}: ".join(problems))
    return parsed.tables


def _read(path: Path) -> pl.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet(path).cast(pl.String)
        return pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise FatalInputError(f"{path}: cannot read it ({str(exc).splitlines()[0]})") from None


def _map_table(table: str, m: _TableMapping, source: Path, name: str) -> pl.DataFrame:
    key = f"tables.{table}"
    path = source / str(m.file)
    if not path.is_file():
        raise ConfigError(f"{name}: {key}.file: no file {m.file!r} in {source}")
    frame = _read(path)
    missing = [(c, s) for c, s in m.columns.items() if s not in frame.columns]
    if missing:
        column, wanted = missing[0]
        raise ConfigError(f"{name}: {key}.columns.{column}: no column {wanted!r} in {m.file} "
                          f"(columns: {', '.join(frame.columns)})")
    # By position: a source column may be named like a wildcard ("*" in Boston's export).
    out = frame.select([pl.nth(frame.columns.index(s)).alias(c) for c, s in m.columns.items()])
    for column, mapping in m.values.items():
        if column not in out.columns:
            raise ConfigError(f"{name}: {key}.values.{column}: {column} is not mapped in {key}.columns")
        out = out.with_columns(pl.col(column).replace(mapping))
    out = out.with_columns(pl.lit(str(v)).alias(c) for c, v in m.constants.items())
    out = out.with_columns(pl.format("{}{}", pl.lit(prefix), pl.int_range(1, pl.len() + 1)).alias(c)
                           for c, prefix in m.row_id.items())
    if m.outcome is not None:
        counts = [(pl.col(c).str.strip_chars().cast(pl.Int64, strict=False).fill_null(0) > 0, v)
                  for c, v in m.outcome.rules]
        expr = pl.when(counts[0][0]).then(pl.lit(counts[0][1]))
        for cond, value in counts[1:]:
            expr = expr.when(cond).then(pl.lit(value))
        out = out.with_columns(expr.otherwise(pl.lit(m.outcome.otherwise)).alias("outcome"))
    if m.kind is not None:
        # A visit within N days after the same enterprise's previous one is its follow-up (a
        # re-inspection), not a random visit: the model holds follow-ups at the neutral visit kind.
        day = pl.col("inspected_on").str.strip_chars().str.to_date(strict=False)
        gaps = out.with_row_index("_r").sort("enterprise_id", day).with_columns(
            (day - day.shift(1).over("enterprise_id")).dt.total_days().alias("_gap")).sort("_r")
        out = gaps.with_columns(
            pl.when(pl.col("_gap") <= m.kind.follow_up_within_days).then(pl.lit("follow_up"))
            .otherwise(pl.lit(m.kind.otherwise)).alias("kind")).drop("_r", "_gap")
    return out


def apply_mapping(source: Path, mapping: Path, out: Path) -> list[str]:
    """Write the contract tables ``mapping`` makes of ``source`` into the folder ``out``; the tables."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise FatalInputError(f"{source}: the source must be a folder")
    name = Path(mapping).name
    tables = load_mapping(Path(mapping))
    made: dict[str, pl.DataFrame] = {}
    for table, m in sorted(tables.items(), key=lambda kv: kv[1].from_table is not None):
        if m.from_table is None:
            made[table] = _map_table(table, m, source, name)
    for table, m in tables.items():
        if m.from_table is not None:
            base = made[m.from_table]
            if "enterprise_id" not in base.columns:
                raise ConfigError(f"{name}: tables.{table}.from_table: {m.from_table} maps no enterprise_id")
            frame = base.select("enterprise_id").unique(maintain_order=True)
            made[table] = frame.with_columns(pl.lit(str(v)).alias(c) for c, v in m.constants.items())
    out.mkdir(parents=True, exist_ok=True)
    for table, frame in made.items():
        frame.write_csv(out / f"{table}.csv")
    return sorted(made)
