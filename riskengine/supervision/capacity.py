"""Inspection capacity per district: a number, a mapping, a capacity file, or what the policy asks for."""

from __future__ import annotations

import csv
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import polars as pl
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from riskengine.core.errors import UsageError

# Issue 5: every enterprise keeps at least this yearly chance of a random inspection (warned if not).
MIN_ANNUAL_PROBABILITY = 0.01


def _as_count(value: object) -> int | None:
    """``value`` as a non-negative integer, or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


POLICY_CAPACITY = "policy"
"""``capacity`` value meaning: in each district, what the policy asks for this period (see
``capacity_for_policy``) rather than a number of inspectors' visits available."""


def capacity_for_policy(population: pl.DataFrame, mandatory: pl.DataFrame) -> dict[str, int]:
    """Per district, the inspections the policy asks for this period: every mandatory item, plus a
    random draw just large enough that each other enterprise's chance is at least its stratum's
    ratio / 12 and, compounded over 12 such months, at least ``MIN_ANNUAL_PROBABILITY``.

    ``population`` is graded and policy-assigned (``ratio``), ``mandatory`` from ``mandatory_items``.
    """
    floor_month = 1.0 - (1.0 - MIN_ANNUAL_PROBABILITY) ** (1.0 / 12.0)
    out: dict[str, int] = {}
    for district in sorted(population.get_column("district").unique().to_list()):
        members = population.filter(pl.col("district") == district)
        must = members.join(mandatory, on="enterprise_id", how="semi").height
        base = members.join(mandatory, on="enterprise_id", how="anti").get_column("ratio").to_numpy() / 12.0
        draw = 0
        if base.size:
            draw = min(base.size, math.ceil(base.sum() * max(1.0, floor_month / base.min()) - 1e-9))
        out[district] = must + draw
    return out


def resolve_capacity(capacity: int | Mapping[str, object], districts: list[str],
                     source: str = "capacity") -> tuple[dict[str, int], list[str]]:
    """Inspections available per district (every district of ``districts``) and warnings.

    One number applies to every district; a mapping names districts, each a non-negative integer;
    a district not named gets 0 (with a warning), a named district that has no graded enterprise
    is an error.
    """
    if not isinstance(capacity, Mapping):
        count = _as_count(capacity)
        if count is None:
            raise UsageError(f"{source}: capacity must be a non-negative integer; got {capacity!r}")
        return {d: count for d in districts}, []
    out: dict[str, int] = {}
    for district, value in capacity.items():
        if district not in districts:
            raise UsageError(f"{source}: district {district!r} is not a district of the graded "
                             f"enterprises (known: {', '.join(districts)})")
        count = _as_count(value)
        if count is None:
            raise UsageError(f"{source}: district {district!r}: capacity must be a non-negative "
                             f"integer; got {value!r}")
        out[district] = count
    missing = [d for d in districts if d not in out]
    warnings = [f"{source}: no capacity for district(s) {', '.join(missing)}; planning 0 inspections "
                "there (every mandatory item listed as over capacity)"] if missing else []
    return {d: out.get(d, 0) for d in districts}, warnings


def _count(value: object) -> int:
    """A capacity value as ``_as_count`` reads it; the rule's words where it is not one."""
    if isinstance(value, dict):
        raise ValueError("must be a number of inspections, not a table")
    count = _as_count(value)
    if count is None:
        raise ValueError("must be a non-negative integer")
    return count


Count = Annotated[int, BeforeValidator(_count)]
"""Inspections available: a non-negative integer (an integral float or a string of digits too)."""


class _CapacityTable(BaseModel):
    """A TOML capacity file: ``"420106" = 40`` per district (optionally under ``[capacity]``)."""

    model_config = ConfigDict(extra="forbid")
    capacity: dict[str, Count]


class _CapacityRow(BaseModel):
    """One row of a CSV capacity file (other columns are ignored)."""

    model_config = ConfigDict(extra="ignore")
    district: Annotated[str, Field(min_length=1)]
    capacity: Count


def _rule(error: Any) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def read_capacity(path: Path) -> dict[str, object]:
    """A capacity file: CSV with columns ``district,capacity`` or TOML ``"420106" = 40`` (optionally
    under ``[capacity]``), validated by ``_CapacityRow`` / ``_CapacityTable``; a problem raises one line
    naming the file, the row or district, the column and the rule."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: capacity file not found")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: not valid TOML: {exc}") from None
        raw = raw.get("capacity", raw)
        if not isinstance(raw, dict):
            raise UsageError(f"{path}: expected a table of district = inspections")
        try:
            return dict(_CapacityTable.model_validate({"capacity": raw}).capacity)
        except ValidationError as exc:
            error = exc.errors()[0]
            district = error["loc"][1]
            if isinstance(error["input"], dict):
                raise UsageError(f"{path}: entry {district!r} {_rule(error)}") from None
            raise UsageError(f"{path}: district {district!r}: capacity {_rule(error)}; got {error['input']!r}"
                             ) from None
    if suffix != ".csv":
        raise UsageError(f"{path}: capacity file must be .csv or .toml")
    out: dict[str, object] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        if "district" not in header or "capacity" not in header:
            raise UsageError(f"{path}: header must have columns 'district' and 'capacity'; got {header}")
        for row_number, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            try:
                parsed = _CapacityRow.model_validate(row)
            except ValidationError as exc:
                error = exc.errors()[0]
                if error["loc"][0] == "district":
                    raise UsageError(f"{path}: row {row_number}, column district: empty") from None
                raise UsageError(f"{path}: row {row_number} (district {row['district']}), column capacity: "
                                 f"{_rule(error)}; got {error['input']!r}") from None
            if parsed.district in out:
                raise UsageError(f"{path}: row {row_number}, column district: {parsed.district!r} "
                                 "listed twice")
            out[parsed.district] = parsed.capacity
    return out
