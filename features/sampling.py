"""Supervisory sampling tests (监督抽查): tests, failures, failure rate, hazard-weighted failures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from features import asof
from features.asof import AS_OF, KEY
from features.exprs import count_if, ratio, sum_if
from features.family import Family

EVENT_DATE = "sampled_on"
# Weight of a failure by the hazard of the product; a failure of unknown hazard counts as low.
HAZARD_WEIGHT = {"low": 1.0, "medium": 2.0, "high": 3.0}


def build(tables: Mapping[str, pl.LazyFrame], keys: pl.LazyFrame, as_of: Sequence[date]) -> pl.LazyFrame:
    """Sampling-test features for every (enterprise_id, as_of) with a test in the last 1095 days."""
    pairs = asof.window(tables["sampling_tests"], EVENT_DATE, as_of, 1095)
    fail = pl.col("result") == "fail"
    weight = pl.col("hazard").replace_strict(
        HAZARD_WEIGHT, default=HAZARD_WEIGHT["low"], return_dtype=pl.Float64
    )
    aggs: list[pl.Expr] = []
    for w in (365, 1095):
        inw = asof.within(w)
        aggs += [
            count_if(inw).alias(f"sampling__tests_{w}d"),
            count_if(inw & fail).alias(f"sampling__fail_{w}d"),
            ratio(count_if(inw & fail), count_if(inw)).alias(f"sampling__fail_rate_{w}d"),
            sum_if(inw & fail, weight).cast(pl.Float64).alias(f"sampling__hazard_weighted_fail_{w}d"),
            count_if(inw & fail & (pl.col("hazard") == "high")).alias(f"sampling__high_hazard_fail_{w}d"),
        ]
    return pairs.group_by(KEY, AS_OF).agg(aggs)


FAMILY = Family("sampling", "sampling_tests", lambda i: build(i.tables, i.keys, i.dates))
