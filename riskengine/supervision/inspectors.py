"""Inspector pools and assignment: least-loaded, at random, never the enterprise's last inspector
(rule 3 of ``riskengine.supervision.plan``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from riskengine.core.errors import UsageError
from riskengine.core.timerule import known_before
from riskengine.lake.layout import table_of

# Inspectors of the district's inspections in this many days before as_of form its pool.
POOL_DAYS = 365


def read_inspectors(path: Path) -> pl.DataFrame:
    """A CSV of the inspector pool: columns ``district,inspector_id``."""
    path = Path(path)
    try:
        frame = pl.read_csv(path, schema_overrides={"district": pl.String, "inspector_id": pl.String})
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise UsageError(f"{path}: cannot read the inspector file: {exc}") from None
    missing = {"district", "inspector_id"} - set(frame.columns)
    if missing:
        raise UsageError(f"{path}: inspector file needs columns district, inspector_id; "
                         f"missing {', '.join(sorted(missing))}")
    frame = frame.select("district", "inspector_id")
    nulls = frame.with_row_index("row", offset=2).filter(
        pl.col("district").is_null() | pl.col("inspector_id").is_null())
    if nulls.height:
        raise UsageError(f"{path}: row {nulls['row'][0]}: district and inspector_id must not be empty")
    return frame.unique(maintain_order=True)


def inspector_pools(tables: Mapping[str, pl.LazyFrame], population: pl.DataFrame, as_of: date,
                    inspectors: pl.DataFrame | None = None) -> dict[str, list[str]]:
    """The inspectors available per district: a given list, else those of the last year's inspections."""
    if inspectors is not None:
        frame = inspectors.select(pl.col("district").cast(pl.String), pl.col("inspector_id").cast(pl.String))
    else:
        districts = population.select("enterprise_id", "district")
        frame = (
            known_before(table_of(tables, "inspections"), "inspected_on", as_of)
            .filter(pl.col("inspected_on") >= as_of - timedelta(days=POOL_DAYS))
            .filter(pl.col("inspector_id").is_not_null())
            .select("enterprise_id", "inspector_id").collect()
            .join(districts, on="enterprise_id")
            .select("district", "inspector_id")
        )
    frame = frame.unique().sort("district", "inspector_id")
    groups = frame.group_by("district", maintain_order=True)
    return {d: g.get_column("inspector_id").to_list() for (d,), g in groups}


def last_inspectors(tables: Mapping[str, pl.LazyFrame], as_of: date) -> dict[str, str]:
    """The inspector of each enterprise's latest inspection (with a known inspector) before as_of."""
    frame = (
        known_before(table_of(tables, "inspections"), "inspected_on", as_of)
        .filter(pl.col("inspector_id").is_not_null())
        .select("enterprise_id", "inspected_on", "inspection_id", "inspector_id").collect()
        .sort("inspected_on", "inspection_id").unique("enterprise_id", keep="last")
    )
    return dict(zip(frame["enterprise_id"].to_list(), frame["inspector_id"].to_list(), strict=True))


def assign_inspectors(enterprise_ids: list[str], pool: list[str], last: Mapping[str, str],
                      rng: np.random.Generator) -> list[str | None]:
    """One inspector per visit: at random among the least-loaded of the pool, never the last one.

    Visits are handled in a random order so that no enterprise is systematically first. ``None``
    when the pool holds no eligible inspector.
    """
    load = dict.fromkeys(pool, 0)
    out: list[str | None] = [None] * len(enterprise_ids)
    for index in rng.permutation(len(enterprise_ids)):
        eligible = [p for p in pool if p != last.get(enterprise_ids[index])]
        if not eligible:
            continue
        least = min(load[p] for p in eligible)
        choice = [p for p in eligible if load[p] == least]
        pick = choice[int(rng.integers(len(choice)))]
        load[pick] += 1
        out[index] = pick
    return out
