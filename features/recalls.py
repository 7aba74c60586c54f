"""Product recalls: counts, ordered recalls, high-hazard recalls, units."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from features import asof
from features.asof import AS_OF, KEY
from features.exprs import count_if, sum_if
from features.family import Family

EVENT_DATE = "announced_on"


def build(tables: Mapping[str, pl.LazyFrame], keys: pl.LazyFrame, as_of: Sequence[date]) -> pl.LazyFrame:
    """Recall features for every (enterprise_id, as_of) with a recall in the last 1095 days."""
    pairs = asof.window(tables["recalls"], EVENT_DATE, as_of, 1095)
    aggs: list[pl.Expr] = []
    for w in (365, 1095):
        inw = asof.within(w)
        aggs += [
            count_if(inw).alias(f"recalls__count_{w}d"),
            count_if(inw & (pl.col("mode") == "ordered")).alias(f"recalls__ordered_{w}d"),
            count_if(inw & (pl.col("hazard") == "high")).alias(f"recalls__high_hazard_{w}d"),
            sum_if(inw, pl.col("units")).cast(pl.Int64).alias(f"recalls__units_{w}d"),
        ]
    ordered_high = (pl.col("mode") == "ordered") & (pl.col("hazard") == "high")
    aggs.append(count_if(asof.within(365) & ordered_high).alias("recalls__ordered_high_hazard_365d"))
    return pairs.group_by(KEY, AS_OF).agg(aggs)


FAMILY = Family("recalls", "recalls", lambda i: build(i.tables, i.keys, i.dates))
